//! Kinesis channels through sluiced: boto3's `kinesis` client creates, describes, lists,
//! updates and deletes a channel from a Sluice stream to a bucket of a real SeaweedFS server;
//! the delivered objects are read back with boto3's S3 client; invalid requests get AWS's
//! error types; the definition survives a restart; and a SIGKILL of sluiced while records are
//! put and delivered loses no acknowledged record (duplicates counted).
//!
//! Needs `firehose/tests/setup.sh` (boto3 and SeaweedFS in `.venv`).
#![cfg(feature = "firehose")]

mod common;
#[path = "../../firehose/tests/support/seaweedfs.rs"]
mod seaweedfs;

use common::Daemon;
use seaweedfs::{S3Server, ACCESS_KEY, SECRET_KEY};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python_path() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} is missing: run firehose/tests/setup.sh", python.display());
    python
}

const PRELUDE: &str = r#"
import gzip, json, sys, time, boto3, botocore
from botocore.config import Config
session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
kinesis = session.client("kinesis", endpoint_url="http://" + sys.argv[1],
                         config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))
args = sys.argv[2:]
ROLE = "arn:aws:iam::000000000000:role/channel"
def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None
def s3_destination(bucket, **storage):
    return {"StorageConfiguration": dict({"BucketARN": "arn:aws:s3:::" + bucket,
        "ExpectedBucketOwner": "000000000000", "CompressionType": "NONE"}, **storage)}
def stream_configuration(arn, format="JSON"):
    return [{"StreamARN": arn, "RecordConfiguration": {"RecordFormatType": format}}]
"#;

/// Runs a boto3 script (`kinesis` is a client of `endpoint`); returns its stdout as JSON.
fn boto3(endpoint: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python_path())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .arg(endpoint)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// A firehose configuration mapping bucket `lake` to the SeaweedFS server, with channels
/// delivering every second instead of every `DataFreshnessInSeconds` (at least 300).
fn firehose_config(at: &Path, s3: &S3Server) -> PathBuf {
    let text = format!(
        "channel-data-freshness-ms = 1000\n[buckets.lake]\nendpoint = {:?}\naccess-key-id = {ACCESS_KEY:?}\nsecret-access-key = {SECRET_KEY:?}\n",
        s3.url
    );
    let path = at.join("firehose.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every line of every object of `bucket` under `prefix` (read with boto3's S3 client,
/// gunzipped by Python when the key ends in `.gz`), with its count.
fn lines_in(s3: &S3Server, bucket: &str, prefix: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (key, body) in s3.objects(bucket) {
        if !key.starts_with(prefix) {
            continue;
        }
        let body = if key.ends_with(".gz") { gunzip(&body) } else { body };
        for line in String::from_utf8(body).expect("utf-8 records").lines() {
            *out.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// A gzip object decoded by Python's gzip module (the standard implementation, not ours).
fn gunzip(body: &[u8]) -> Vec<u8> {
    let out = Command::new(python_path())
        .args(["-c", "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(body)?;
            child.wait_with_output()
        })
        .expect("python gunzips");
    assert!(out.status.success());
    out.stdout
}

/// Whether `key` is `prefix` + `YYYY/MM/DD/` (the template's date) + AWS's object name
/// `NAME-1-YYYY-MM-DD-HH-MM-SS-` + a UUID + `extension`.
fn aws_object_name(key: &str, prefix: &str, name: &str, extension: &str) -> bool {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = key.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(extension)) else { return false };
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    let [year, month, day, object] = parts[..] else { return false };
    let Some(object) = object.strip_prefix(name).and_then(|object| object.strip_prefix("-1-")) else { return false };
    let fields: Vec<&str> = object.splitn(7, '-').collect();
    [year, month, day].into_iter().all(digits)
        && fields.len() == 7
        && fields[..6].iter().all(|field| digits(field))
        && uuid_like(fields[6])
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn boto3_channel_lifecycle_delivers_to_seaweedfs_and_survives_a_restart() {
    let s3 = S3Server::start(&["lake"]);
    let work = tempfile::tempdir().unwrap();
    let config = firehose_config(work.path(), &s3);
    let mut daemon = Daemon::start_with("kinesis", 2, &["--firehose-config", config.to_str().unwrap()]);

    let script = r#"
kinesis.create_stream(StreamName="clicks", ShardCount=2)
kinesis.create_stream(StreamName="other", ShardCount=1)
arn = kinesis.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamARN"]
other = kinesis.describe_stream_summary(StreamName="other")["StreamDescriptionSummary"]["StreamARN"]
destination = s3_destination("lake", CompressionType="GZIP", OutputKeyTemplate="clicks/!{timestamp:yyyy/MM/dd}/")
destination["DeadLetterQueueS3Configuration"] = {"BucketARN": "arn:aws:s3:::lake",
    "ExpectedBucketOwner": "000000000000", "ErrorOutputPrefix": "dlq/"}
created = kinesis.create_channel(ChannelName="clicks-to-lake", ServiceExecutionRoleARN=ROLE,
    StreamConfigurationList=stream_configuration(arn), S3DestinationConfiguration=destination,
    Tags={"team": "web"})["ChannelDescription"]
channel = created["ChannelARN"]
out = {"arn": channel, "created_status": created["ChannelStatus"], "id": created["ChannelId"]}
d = kinesis.describe_channel(ChannelARN=channel)["ChannelDescription"]
out["status"] = d["ChannelStatus"]
out["freshness"] = d["S3DestinationConfiguration"]["DataFreshnessInSeconds"]
out["compression"] = d["S3DestinationConfiguration"]["StorageConfiguration"]["CompressionType"]
out["dead_letter"] = d["S3DestinationConfiguration"]["DeadLetterQueueS3Configuration"]["ErrorOutputPrefix"]
out["stream"] = d["StreamConfigurationList"][0]["StreamARN"] == arn
out["logging"] = d["LoggingConfiguration"]
summaries = kinesis.list_channels()["ChannelSummaries"]
out["list"] = [(s["ChannelName"], s["ChannelDestinationType"], s["ChannelStatus"]) for s in summaries]
out["filtered"] = len(kinesis.list_channels(StreamFilter=[{"StreamARN": other}])["ChannelSummaries"])
def create(name="c", streams=None, **extra):
    params = {"ChannelName": name, "ServiceExecutionRoleARN": ROLE,
              "StreamConfigurationList": streams or stream_configuration(arn)}
    if "S3DestinationConfiguration" not in extra and "S3TablesDestinationConfiguration" not in extra:
        params["S3DestinationConfiguration"] = s3_destination("lake")
    params.update(extra)
    return error_code(lambda: kinesis.create_channel(**params))
out["duplicate"] = create("clicks-to-lake")
out["bad_name"] = create("no spaces!")
out["bad_compression"] = create(S3DestinationConfiguration=s3_destination("lake", CompressionType="BZIP2"))
out["bad_owner"] = create(S3DestinationConfiguration={"StorageConfiguration": {"BucketARN": "arn:aws:s3:::lake",
    "ExpectedBucketOwner": "owner-number", "CompressionType": "NONE"}})
out["short_freshness"] = create(S3DestinationConfiguration=dict(s3_destination("lake"), DataFreshnessInSeconds=10))
out["gsr_to_s3"] = create(streams=stream_configuration(arn, "GSR_JSON"))
out["no_destination"] = error_code(lambda: kinesis.create_channel(
    ChannelName="c", ServiceExecutionRoleARN=ROLE, StreamConfigurationList=stream_configuration(arn)))
out["unknown_bucket"] = create(S3DestinationConfiguration=s3_destination("nowhere"))
out["missing_stream"] = create(streams=stream_configuration(arn.replace("stream/clicks", "stream/nope")))
out["bad_role"] = error_code(lambda: kinesis.create_channel(ChannelName="c", ServiceExecutionRoleARN="role",
    StreamConfigurationList=stream_configuration(arn), S3DestinationConfiguration=s3_destination("lake")))
out["describe_missing"] = error_code(lambda: kinesis.describe_channel(ChannelARN=channel + "x"))
out["describe_bad_arn"] = error_code(lambda: kinesis.describe_channel(ChannelARN="not-an-arn"))
out["update_short"] = error_code(lambda: kinesis.update_channel(ChannelARN=channel,
    S3DestinationConfiguration={"DataFreshnessInSeconds": 30}))
out["failed_puts"] = 0
for b in range(5):
    r = kinesis.put_records(StreamName="clicks",
        Records=[{"Data": ('{"click":%d}\n' % (b * 200 + i)).encode(), "PartitionKey": str(i)} for i in range(200)])
    out["failed_puts"] += r["FailedRecordCount"]
print(json.dumps(out))
"#;
    let endpoint = daemon.http_addr.to_string();
    let out = boto3(&endpoint, script, &[]);
    let channel = out["arn"].as_str().unwrap().to_string();
    assert_eq!(channel, "arn:aws:kinesis:us-east-1:000000000000:channel/clicks-to-lake");
    assert_eq!(out["created_status"], "CREATING", "{out}");
    assert_eq!(out["status"], "ACTIVE", "{out}");
    assert_eq!(out["freshness"], 300, "AWS's default");
    assert_eq!(out["compression"], "GZIP");
    assert_eq!(out["dead_letter"], "dlq/");
    assert_eq!(out["stream"], true);
    assert_eq!(out["logging"], json!({"CloudWatchLogs": {"Enabled": false}}));
    assert_eq!(out["list"], json!([["clicks-to-lake", "S3", "ACTIVE"]]));
    assert_eq!(out["filtered"], 0);
    assert_eq!(out["duplicate"], "ResourceInUseException", "{out}");
    assert_eq!(out["bad_name"], "ValidationException", "{out}");
    assert_eq!(out["bad_compression"], "ValidationException", "{out}");
    assert_eq!(out["bad_owner"], "ValidationException", "{out}");
    assert_eq!(out["bad_role"], "ValidationException", "{out}");
    assert_eq!(out["short_freshness"], "InvalidArgumentException", "{out}");
    assert_eq!(out["gsr_to_s3"], "InvalidArgumentException", "{out}");
    assert_eq!(out["no_destination"], "InvalidArgumentException", "{out}");
    assert_eq!(out["unknown_bucket"], "InvalidArgumentException", "{out}");
    assert_eq!(out["missing_stream"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["describe_missing"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["describe_bad_arn"], "ValidationException", "{out}");
    assert_eq!(out["update_short"], "InvalidArgumentException", "{out}");
    assert_eq!(out["failed_puts"], 0);

    // The objects: gzip under the template's prefix, every record once.
    let want: BTreeMap<String, usize> = (0..1000).map(|i| (format!("{{\"click\":{i}}}"), 1)).collect();
    wait_until("the clicks in SeaweedFS", Duration::from_secs(60), || lines_in(&s3, "lake", "clicks/").len() >= 1000);
    assert_eq!(lines_in(&s3, "lake", "clicks/"), want);
    let keys: Vec<String> = s3.objects("lake").into_keys().collect();
    assert!(keys.iter().all(|key| aws_object_name(key, "clicks/", "clicks-to-lake", ".gz")), "{keys:?}");

    // UpdateChannel replaces the engine; the definition survives a restart and delivery goes on.
    let script = r#"
channel = args[0]
u = kinesis.update_channel(ChannelARN=channel, S3DestinationConfiguration={"DataFreshnessInSeconds": 600})
out = {"update_status": u["ChannelDescription"]["ChannelStatus"]}
d = kinesis.describe_channel(ChannelARN=channel)["ChannelDescription"]
out["status"], out["freshness"] = d["ChannelStatus"], d["S3DestinationConfiguration"]["DataFreshnessInSeconds"]
print(json.dumps(out))
"#;
    let out = boto3(&endpoint, script, &[&channel]);
    assert_eq!(out, json!({"update_status": "UPDATING", "status": "ACTIVE", "freshness": 600}));
    daemon.restart();
    let endpoint = daemon.http_addr.to_string();
    let script = r#"
channel = args[0]
d = kinesis.describe_channel(ChannelARN=channel)["ChannelDescription"]
out = {"status": d["ChannelStatus"], "freshness": d["S3DestinationConfiguration"]["DataFreshnessInSeconds"]}
kinesis.put_records(StreamName="clicks",
    Records=[{"Data": ('{"click":%d}\n' % i).encode(), "PartitionKey": str(i)} for i in range(1000, 1100)])
print(json.dumps(out))
"#;
    assert_eq!(boto3(&endpoint, script, &[&channel]), json!({"status": "ACTIVE", "freshness": 600}));
    wait_until("the clicks after the restart", Duration::from_secs(60), || {
        lines_in(&s3, "lake", "clicks/").len() >= 1100
    });
    let lines = lines_in(&s3, "lake", "clicks/");
    assert_eq!(lines.len(), 1100);
    let duplicates: usize = lines.values().map(|count| count - 1).sum();
    eprintln!("after an update and a restart: {duplicates} duplicates");

    let script = r#"
channel = args[0]
kinesis.delete_channel(ChannelARN=channel)
out = {"describe": error_code(lambda: kinesis.describe_channel(ChannelARN=channel)),
       "delete_again": error_code(lambda: kinesis.delete_channel(ChannelARN=channel)),
       "list": kinesis.list_channels()["ChannelSummaries"]}
print(json.dumps(out))
"#;
    let out = boto3(&endpoint, script, &[&channel]);
    assert_eq!(
        out,
        json!({"describe": "ResourceNotFoundException", "delete_again": "ResourceNotFoundException", "list": []})
    );
    daemon.restart();
    let out =
        boto3(&daemon.http_addr.to_string(), r#"print(json.dumps(kinesis.list_channels()["ChannelSummaries"]))"#, &[]);
    assert_eq!(out, json!([]), "a deleted channel stays deleted");
}

/// A producer putting numbered records to stream `orders` in batches, writing each
/// acknowledged record's number to `acked` as soon as the answer arrives; it stops at the
/// first failure (sluiced killed).
fn producer(endpoint: &str, acked: &Path, batches: u64) -> Child {
    let script = format!(
        r#"{PRELUDE}
acked = open(args[0], "a")
for b in range(int(args[1])):
    ids = [b * 100 + i for i in range(100)]
    try:
        r = kinesis.put_records(StreamName="orders", Records=[{{"Data": ("%d\n" % n).encode(), "PartitionKey": str(n)}} for n in ids])
    except Exception:
        break
    for n, entry in zip(ids, r["Records"]):
        if "SequenceNumber" in entry:
            acked.write("%d\n" % n)
    acked.flush()
"#
    );
    Command::new(python_path())
        .arg("-c")
        .arg(script)
        .arg(endpoint)
        .arg(acked)
        .arg(batches.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("producer starts")
}

#[test]
fn sigkill_of_sluiced_during_channel_delivery_loses_no_acknowledged_record() {
    let s3 = S3Server::start(&["lake"]);
    let work = tempfile::tempdir().unwrap();
    let config = firehose_config(work.path(), &s3);
    let mut daemon = Daemon::start_with("unlimited", 2, &["--firehose-config", config.to_str().unwrap()]);
    let script = r#"
kinesis.create_stream(StreamName="orders", ShardCount=2)
arn = kinesis.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
kinesis.create_channel(ChannelName="orders", ServiceExecutionRoleARN=ROLE,
    StreamConfigurationList=stream_configuration(arn, "STRING"),
    S3DestinationConfiguration=s3_destination("lake", OutputKeyTemplate="orders/"))
print("{}")
"#;
    boto3(&daemon.http_addr.to_string(), script, &[]);
    let acked_path = work.path().join("acked.txt");
    let acked = || -> Vec<String> {
        std::fs::read_to_string(&acked_path).unwrap_or_default().lines().map(str::to_string).collect()
    };
    let batches = 1_000;
    let mut producer = producer(&daemon.http_addr.to_string(), &acked_path, batches);
    wait_until("records acknowledged", Duration::from_secs(60), || acked().len() >= 3_000);
    wait_until("some delivered", Duration::from_secs(60), || !lines_in(&s3, "lake", "orders/").is_empty());
    daemon.kill();
    producer.wait().unwrap();
    daemon.restart();
    let acked = acked();
    wait_until("every acknowledged record delivered", Duration::from_secs(120), || {
        let delivered = lines_in(&s3, "lake", "orders/");
        acked.iter().all(|id| delivered.contains_key(id))
    });
    let delivered = lines_in(&s3, "lake", "orders/");
    let duplicates: usize = delivered.values().map(|count| count - 1).sum();
    eprintln!("acknowledged {}, delivered {} distinct, {duplicates} duplicates", acked.len(), delivered.len());
    // Records put but not acknowledged (in flight at the kill) may be delivered too; nothing
    // delivered was never put.
    assert!(delivered.keys().all(|id| id.parse::<u64>().is_ok_and(|n| n < batches * 100)));
}
