//! Delivery streams through sluiced: boto3's `firehose` client against a real `sluiced`,
//! delivering to a real SeaweedFS server (read back with boto3's S3 client) and to a local
//! directory; definitions surviving a restart; and a SIGKILL of sluiced while records are
//! being put and delivered, after which every acknowledged record is found (duplicates counted);
//! the Glue Data Catalog through boto3's `glue` client, and an AWS user's Firehose script
//! (`firehose/tests/aws_parquet_script.py`) run unchanged against sluiced and SeaweedFS.
//!
//! Needs `firehose/tests/setup.sh` (boto3 and SeaweedFS in `.venv`).

mod common;
#[path = "../../firehose/tests/support/seaweedfs.rs"]
mod seaweedfs;

use common::{sluice_bin, Daemon};
use seaweedfs::{S3Server, ACCESS_KEY, SECRET_KEY};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python_path() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} is missing: run firehose/tests/setup.sh", python.display());
    python
}

/// Runs a boto3 script (`fh` is a firehose client of `endpoint`); returns its stdout.
fn boto3(endpoint: &str, script: &str, args: &[&str]) -> String {
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
    String::from_utf8(out.stdout).expect("utf-8")
}

const PRELUDE: &str = r#"
import base64, json, sys, time, boto3, botocore
from botocore.config import Config
session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
fh = session.client("firehose", endpoint_url="http://" + sys.argv[1],
                    config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))
kinesis = session.client("kinesis", endpoint_url="http://" + sys.argv[1])
glue = session.client("glue", endpoint_url="http://" + sys.argv[1], config=Config(retries={"max_attempts": 1}))
args = sys.argv[2:]
def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None
"#;

const ROLE: &str = "arn:aws:iam::000000000000:role/firehose";

/// A firehose configuration file mapping bucket `files` to `dir` and, if given, `lake` to a
/// SeaweedFS server.
fn firehose_config(at: &Path, dir: &Path, s3: Option<&S3Server>) -> PathBuf {
    let mut text = format!("[buckets.files]\ndir = {:?}\n", dir.display().to_string());
    if let Some(s3) = s3 {
        text += &format!(
            "[buckets.lake]\nendpoint = {:?}\naccess-key-id = {ACCESS_KEY:?}\nsecret-access-key = {SECRET_KEY:?}\n",
            s3.url
        );
    }
    let path = at.join("firehose.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every line of every file under `dir` (temporary files excluded), with its count.
fn lines_under(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".tmp") {
                for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                    *out.entry(line.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
    out
}

/// Every file under `dir` (temporary files excluded) with its lines.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".tmp") {
                let lines = std::fs::read_to_string(&path).unwrap_or_default().lines().map(str::to_string).collect();
                out.insert(path, lines);
            }
        }
    }
    out
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn boto3_firehose_delivers_to_seaweedfs_and_a_directory_and_definitions_survive_a_restart() {
    let s3 = S3Server::start(&["lake"]);
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, Some(&s3));
    let config = config.to_str().unwrap();
    let mut daemon = Daemon::start_with("kinesis", 2, &["--firehose-config", config]);
    let endpoint = daemon.http_addr.to_string();

    let script = r#"
role = args[0]
arn = fh.create_delivery_stream(DeliveryStreamName="clicks", DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::lake", "Prefix": "clicks/",
        "CompressionFormat": "GZIP", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})["DeliveryStreamARN"]
assert arn == "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks", arn
fh.create_delivery_stream(DeliveryStreamName="logs",
    S3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::files",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
out = {}
out["duplicate"] = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="logs",
    S3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::files"}))
out["unknown_bucket"] = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="nowhere",
    S3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::nowhere"}))
out["too_big_buffer"] = error_code(lambda: fh.create_delivery_stream(DeliveryStreamName="big",
    ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::lake",
        "BufferingHints": {"SizeInMBs": 200, "IntervalInSeconds": 60}}))
out["missing"] = error_code(lambda: fh.describe_delivery_stream(DeliveryStreamName="missing"))
out["put_missing"] = error_code(lambda: fh.put_record(DeliveryStreamName="missing", Record={"Data": b"x"}))
d = fh.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]
out["status"] = d["DeliveryStreamStatus"]
out["compression"] = d["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"]
out["names"] = fh.list_delivery_streams()["DeliveryStreamNames"]
out["kinesis_streams"] = kinesis.list_streams()["StreamNames"]
rid = fh.put_record(DeliveryStreamName="clicks", Record={"Data": b'{"click":0}\n'})["RecordId"]
failed = 0
for b in range(4):
    r = fh.put_record_batch(DeliveryStreamName="clicks",
        Records=[{"Data": ('{"click":%d}\n' % (1 + b * 250 + i)).encode()} for i in range(250)])
    failed += r["FailedPutCount"]
    assert len(r["RequestResponses"]) == 250
r = fh.put_record_batch(DeliveryStreamName="logs", Records=[{"Data": ("log %d\n" % i).encode()} for i in range(300)])
failed += r["FailedPutCount"]
out["failed"] = failed
out["record_id"] = bool(rid)
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&endpoint, script, &[ROLE])).unwrap();
    assert_eq!(out["duplicate"], "ResourceInUseException", "{out}");
    assert_eq!(out["unknown_bucket"], "InvalidArgumentException", "{out}");
    assert_eq!(out["too_big_buffer"], "ValidationException", "{out}");
    assert_eq!(out["missing"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["put_missing"], "ResourceNotFoundException", "{out}");
    assert_eq!(out["status"], "ACTIVE");
    assert_eq!(out["compression"], "GZIP");
    assert_eq!(out["names"], serde_json::json!(["clicks", "logs"]));
    assert_eq!(out["kinesis_streams"], serde_json::json!([]), "hidden streams are not listed");
    assert_eq!(out["failed"], 0);

    // The S3 objects: gzip, AWS's naming, every record once.
    let want: Vec<String> = (0..1001).map(|i| format!("{{\"click\":{i}}}")).collect();
    let read_clicks = || -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for (key, body) in s3.objects("lake") {
            assert!(key.starts_with("clicks/") && key.ends_with(".gz"), "{key}");
            let mut text = String::new();
            std::io::Read::read_to_string(&mut gunzip(&body).as_slice(), &mut text).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
        lines.sort_by_key(|line| line[9..line.len() - 1].parse::<u64>().unwrap_or(u64::MAX));
        lines
    };
    wait_until("the clicks in SeaweedFS", Duration::from_secs(60), || read_clicks().len() >= want.len());
    assert_eq!(read_clicks(), want);
    wait_until("the logs in the directory", Duration::from_secs(60), || lines_under(&files).len() == 300);
    assert!(lines_under(&files).values().all(|count| *count == 1));

    // Definitions survive a restart, and delivery goes on.
    daemon.restart();
    let endpoint = daemon.http_addr.to_string();
    let script = r#"
out = {"names": fh.list_delivery_streams()["DeliveryStreamNames"]}
fh.put_record_batch(DeliveryStreamName="logs", Records=[{"Data": ("log %d\n" % i).encode()} for i in range(300, 400)])
fh.delete_delivery_stream(DeliveryStreamName="clicks")
out["after_delete"] = fh.list_delivery_streams()["DeliveryStreamNames"]
out["deleted"] = error_code(lambda: fh.describe_delivery_stream(DeliveryStreamName="clicks"))
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&endpoint, script, &[])).unwrap();
    assert_eq!(out["names"], serde_json::json!(["clicks", "logs"]));
    assert_eq!(out["after_delete"], serde_json::json!(["logs"]));
    assert_eq!(out["deleted"], "ResourceNotFoundException");
    wait_until("the logs after the restart", Duration::from_secs(60), || lines_under(&files).len() == 400);
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

/// A producer putting numbered records in batches, writing each acknowledged batch's numbers
/// to `acked` as soon as the answer arrives; it stops at the first failure (sluiced killed).
fn producer(endpoint: &str, acked: &Path, first: u64, batches: u64) -> Child {
    let script = format!(
        r#"{PRELUDE}
acked = open(args[0], "a")
first, batches = int(args[1]), int(args[2])
for b in range(batches):
    ids = [first + b * 100 + i for i in range(100)]
    try:
        r = fh.put_record_batch(DeliveryStreamName="crashy", Records=[{{"Data": ("%d\n" % n).encode()}} for n in ids])
    except Exception:
        break
    for n, resp in zip(ids, r["RequestResponses"]):
        if "RecordId" in resp:
            acked.write("%d\n" % n)
    acked.flush()
"#
    );
    Command::new(python_path())
        .arg("-c")
        .arg(script)
        .arg(endpoint)
        .arg(acked)
        .arg(first.to_string())
        .arg(batches.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("producer starts")
}

/// Also the bound on duplicates (issue 15: one buffer per crash): with a zero buffer interval
/// the stream delivers many small objects a second, and each kill may re-deliver the records
/// of one object written before it, never of two (the engine delivers a buffer only once the
/// checkpoint of the one before is durable; with a checkpoint trailing delivery, many).
#[test]
fn sigkill_of_sluiced_during_delivery_loses_no_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let config = config.to_str().unwrap();
    let mut daemon = Daemon::start_with("unlimited", 2, &["--firehose-config", config]);
    let script = r#"
fh.create_delivery_stream(DeliveryStreamName="crashy", S3DestinationConfiguration={"RoleARN": args[0],
    "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
"#;
    boto3(&daemon.http_addr.to_string(), script, &[ROLE]);
    let acked_path = work.path().join("acked.txt");
    let acked = || -> Vec<String> {
        std::fs::read_to_string(&acked_path).unwrap_or_default().lines().map(str::to_string).collect()
    };
    let mut first = 0;
    // The objects written before each kill (complete: the directory bucket renames them in).
    let mut before_kill: Vec<std::collections::BTreeSet<PathBuf>> = Vec::new();
    for round in 0..2 {
        // Put records and kill sluiced while the producer is still putting and earlier
        // buffers are being delivered.
        let mut producer = producer(&daemon.http_addr.to_string(), &acked_path, first, 1_000);
        let before = acked().len();
        wait_until("records acknowledged", Duration::from_secs(60), || acked().len() >= before + 3_000);
        wait_until("some delivered", Duration::from_secs(60), || !lines_under(&files).is_empty());
        daemon.kill();
        before_kill.push(files_under(&files).into_keys().collect());
        producer.wait().unwrap();
        first += 1_000 * 100;
        daemon.restart();
        eprintln!("round {round}: {} acknowledged so far", acked().len());
    }
    let acked = acked();
    let delivered = || lines_under(&files);
    wait_until("every acknowledged record delivered", Duration::from_secs(120), || {
        let delivered = delivered();
        acked.iter().all(|id| delivered.contains_key(id))
    });
    let delivered = delivered();
    let duplicates: usize = delivered.values().map(|count| count - 1).sum();
    eprintln!("acknowledged {}, delivered {} distinct, {duplicates} duplicates", acked.len(), delivered.len());
    // Records put but not acknowledged (in flight at the kill) may be delivered too; nothing
    // delivered was never put.
    assert!(delivered.keys().all(|id| id.parse::<u64>().is_ok_and(|n| n < first)));
    // Per kill: the objects written since the kill before whose records were delivered again
    // after it. One at most: the buffer delivered, or being delivered, ahead of the checkpoint.
    let all = files_under(&files);
    let none = std::collections::BTreeSet::new();
    for (kill, written) in before_kill.iter().enumerate() {
        let earlier = if kill == 0 { &none } else { &before_kill[kill - 1] };
        let later: std::collections::BTreeSet<&String> =
            all.iter().filter(|(path, _)| !written.contains(*path)).flat_map(|(_, lines)| lines).collect();
        let again: Vec<(&PathBuf, usize)> = written
            .difference(earlier)
            .map(|path| (path, all[path].iter().filter(|line| later.contains(line)).count()))
            .filter(|(_, count)| *count > 0)
            .collect();
        eprintln!("kill {kill}: {} objects before it, re-delivered from them: {again:?}", written.len());
        assert!(again.len() <= 1, "kill {kill} re-delivered records of {} objects: {again:?}", again.len());
    }
}

#[test]
fn kinesis_stream_as_source_is_delivered_and_resumes_from_its_checkpoint() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let config = config.to_str().unwrap();
    let mut daemon = Daemon::start_with("kinesis", 2, &["--firehose-config", config]);
    let script = r#"
kinesis.create_stream(StreamName="orders", ShardCount=2)
arn = kinesis.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamARN"]
fh.create_delivery_stream(DeliveryStreamName="orders-to-files", DeliveryStreamType="KinesisStreamAsSource",
    KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": args[0]},
    ExtendedS3DestinationConfiguration={"RoleARN": args[0], "BucketARN": "arn:aws:s3:::files",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
out = {"put": error_code(lambda: fh.put_record(DeliveryStreamName="orders-to-files", Record={"Data": b"x"}))}
d = fh.describe_delivery_stream(DeliveryStreamName="orders-to-files")["DeliveryStreamDescription"]
out["source"] = d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn
r = kinesis.put_records(StreamName="orders", Records=[{"Data": ("order %d\n" % i).encode(), "PartitionKey": str(i)} for i in range(200)])
last = {}
for e in r["Records"]:
    shard = str(int(e["ShardId"].split("-")[1]))
    last[shard] = max(last.get(shard, 0), int(e["SequenceNumber"]))
out["last"] = {k: str(v) for k, v in last.items()}
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[ROLE])).unwrap();
    assert_eq!(out["put"], "InvalidArgumentException", "{out}");
    assert_eq!(out["source"], true);
    wait_until("the orders in the directory", Duration::from_secs(60), || lines_under(&files).len() == 200);
    // Delivered positions are checkpointed: after a restart only new records are delivered.
    let checkpoint = daemon.data_dir().join("firehose/checkpoints/orders-to-files.json");
    wait_until("the checkpoint of the last records", Duration::from_secs(30), || {
        std::fs::read(&checkpoint).ok().and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            == Some(out["last"].clone())
    });
    daemon.restart();
    let script = r#"
kinesis.put_records(StreamName="orders", Records=[{"Data": ("order %d\n" % i).encode(), "PartitionKey": str(i)} for i in range(200, 300)])
"#;
    boto3(&daemon.http_addr.to_string(), script, &[]);
    wait_until("the new orders", Duration::from_secs(60), || lines_under(&files).len() == 300);
    std::thread::sleep(Duration::from_secs(2));
    let lines = lines_under(&files);
    assert_eq!(lines.len(), 300);
    assert!(lines.values().all(|count| *count == 1), "nothing delivered twice after a clean restart");
}

/// A principal of a credentials file with one identity policy of `statements` (JSON).
fn principal(name: &str, access_key_id: &str, statements: &str) -> String {
    let policy = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
    format!(
        "[[principal]]\nname = \"{name}\"\naccess_key_id = \"{access_key_id}\"\nsecret_access_key = \"{access_key_id}-secret\"\n\
         policies = ['''{policy}''']\n\n"
    )
}

/// The audit log's events, once `count` of them match `predicate` (its writer thread appends
/// in the background).
fn audit_events(dir: &Path, predicate: impl Fn(&serde_json::Value) -> bool, count: usize) -> Vec<serde_json::Value> {
    let mut matching = Vec::new();
    wait_until("the audit events", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(dir.join("audit.log")).unwrap_or_default();
        matching = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| predicate(event))
            .collect();
        matching.len() >= count
    });
    matching
}

/// With `--credentials`, Firehose, channel and Glue calls are authorized per caller as Kinesis
/// calls are: `admin` may do everything; `producer` may list and describe, put to `open-*`
/// delivery streams only, describe channels, and read the tables of the Glue database `shop`; its other calls get AccessDeniedException with IAM's
/// message, and every call is in the audit log with record data hidden.
#[test]
fn firehose_and_channel_calls_are_authorized_per_caller_and_audited() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let credentials = work.path().join("credentials.toml");
    let audit = work.path().join("audit");
    let open = "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-*";
    let glue = "arn:aws:glue:us-east-1:000000000000";
    std::fs::write(
        &credentials,
        principal("admin", "AKIDADMIN", r#"{"Effect": "Allow", "Action": ["firehose:*", "kinesis:*", "glue:*"], "Resource": "*"}"#)
            + &principal(
                "producer",
                "AKIDPRODUCER",
                &format!(
                    r#"{{"Effect": "Allow", "Action": ["firehose:Describe*", "firehose:List*", "kinesis:DescribeChannel", "kinesis:ListChannels"], "Resource": "*"}},
                       {{"Effect": "Allow", "Action": "firehose:PutRecord*", "Resource": "{open}"}},
                       {{"Effect": "Allow", "Action": "glue:GetTable", "Resource": ["{glue}:catalog", "{glue}:database/shop", "{glue}:table/shop/*"]}}"#
                ),
            ),
    )
    .unwrap();
    let daemon = Daemon::start_with(
        "kinesis",
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
    let script = r#"
def clients(key):
    s = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=key + "-secret", region_name="us-east-1")
    c = Config(retries={"max_attempts": 1})
    return (s.client("firehose", endpoint_url="http://" + sys.argv[1], config=c),
            s.client("kinesis", endpoint_url="http://" + sys.argv[1], config=c))
admin, admin_kinesis = clients("AKIDADMIN")
producer, producer_kinesis = clients("AKIDPRODUCER")
def glue_client(key):
    s = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=key + "-secret", region_name="us-east-1")
    return s.client("glue", endpoint_url="http://" + sys.argv[1], config=Config(retries={"max_attempts": 1}))
admin_glue, producer_glue = glue_client("AKIDADMIN"), glue_client("AKIDPRODUCER")
def denied(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"]]
    return None
destination = {"RoleARN": args[0], "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}
for name in ["open-1", "closed"]:
    admin.create_delivery_stream(DeliveryStreamName=name, S3DestinationConfiguration=destination,
        Tags=[{"Key": "team", "Value": "web"}])
admin_kinesis.create_stream(StreamName="src", ShardCount=1)
arn = admin_kinesis.describe_stream_summary(StreamName="src")["StreamDescriptionSummary"]["StreamARN"]
channel = admin_kinesis.create_channel(ChannelName="ch", ServiceExecutionRoleARN="arn:aws:iam::000000000000:role/c",
    StreamConfigurationList=[{"StreamARN": arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}],
    S3DestinationConfiguration={"StorageConfiguration": {"BucketARN": "arn:aws:s3:::files", "ExpectedBucketOwner": "000000000000", "CompressionType": "NONE"}},
    Tags={"team": "web"})["ChannelDescription"]["ChannelARN"]
out = {"channel": channel}
out["names"] = producer.list_delivery_streams()["DeliveryStreamNames"]
out["describe"] = producer.describe_delivery_stream(DeliveryStreamName="closed")["DeliveryStreamDescription"]["DeliveryStreamName"]
out["put_open"] = "RecordId" in producer.put_record(DeliveryStreamName="open-1", Record={"Data": b"allowed\n"})
out["batch_open"] = producer.put_record_batch(DeliveryStreamName="open-1", Records=[{"Data": b"batch\n"}])["FailedPutCount"]
out["put_closed"] = denied(lambda: producer.put_record(DeliveryStreamName="closed", Record={"Data": b"secret\n"}))
out["batch_closed"] = denied(lambda: producer.put_record_batch(DeliveryStreamName="closed", Records=[{"Data": b"secret\n"}]))
out["create"] = denied(lambda: producer.create_delivery_stream(DeliveryStreamName="open-2", S3DestinationConfiguration=destination))
out["delete"] = denied(lambda: producer.delete_delivery_stream(DeliveryStreamName="open-1"))
out["tag"] = denied(lambda: producer.tag_delivery_stream(DeliveryStreamName="open-1", Tags=[{"Key": "a", "Value": "b"}]))
out["encrypt"] = denied(lambda: producer.start_delivery_stream_encryption(DeliveryStreamName="open-1"))
admin.tag_delivery_stream(DeliveryStreamName="open-1", Tags=[{"Key": "owner", "Value": "admin"}])
out["admin_tags"] = admin.list_tags_for_delivery_stream(DeliveryStreamName="open-1")["Tags"]
out["describe_channel"] = producer_kinesis.describe_channel(ChannelARN=channel)["ChannelDescription"]["ChannelName"]
out["list_channels"] = len(producer_kinesis.list_channels()["ChannelSummaries"])
out["delete_channel"] = denied(lambda: producer_kinesis.delete_channel(ChannelARN=channel))
out["update_channel"] = denied(lambda: producer_kinesis.update_channel(ChannelARN=channel,
    S3DestinationConfiguration={"DataFreshnessInSeconds": 600}))
out["create_channel"] = denied(lambda: producer_kinesis.create_channel(ChannelName="ch2",
    ServiceExecutionRoleARN="arn:aws:iam::000000000000:role/c",
    StreamConfigurationList=[{"StreamARN": arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}],
    S3DestinationConfiguration={"StorageConfiguration": {"BucketARN": "arn:aws:s3:::files", "ExpectedBucketOwner": "000000000000", "CompressionType": "NONE"}}))
for database in ["shop", "private"]:
    admin_glue.create_database(DatabaseInput={"Name": database})
    admin_glue.create_table(DatabaseName=database, TableInput={"Name": "orders", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]}})
out["glue_get"] = producer_glue.get_table(DatabaseName="shop", Name="orders")["Table"]["Name"]
out["glue_create"] = denied(lambda: producer_glue.create_table(DatabaseName="shop", TableInput={"Name": "more"}))
out["glue_private"] = denied(lambda: producer_glue.get_table(DatabaseName="private", Name="orders"))
out["still_there"] = admin.describe_delivery_stream(DeliveryStreamName="open-1")["DeliveryStreamDescription"]["DeliveryStreamStatus"]
admin_kinesis.delete_channel(ChannelARN=channel)
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[ROLE])).unwrap();
    assert_eq!(out["names"], serde_json::json!(["closed", "open-1"]), "{out}");
    assert_eq!(out["describe"], "closed");
    assert_eq!(out["put_open"], true);
    assert_eq!(out["batch_open"], 0);
    let producer_arn = "arn:aws:iam::000000000000:user/producer";
    let refusal = |what: &str, action: &str, resource: &str| {
        assert_eq!(out[what][0], "AccessDeniedException", "{what}: {out}");
        let message = out[what][1].as_str().unwrap();
        let want = format!("User: {producer_arn} is not authorized to perform: {action} on resource: {resource} ");
        assert!(message.starts_with(&want), "{what}: {message}");
    };
    let closed = "arn:aws:firehose:us-east-1:000000000000:deliverystream/closed";
    refusal("put_closed", "firehose:PutRecord", closed);
    refusal("batch_closed", "firehose:PutRecordBatch", closed);
    refusal("create", "firehose:CreateDeliveryStream", "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-2");
    refusal("delete", "firehose:DeleteDeliveryStream", "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-1");
    refusal("tag", "firehose:TagDeliveryStream", "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-1");
    refusal(
        "encrypt",
        "firehose:StartDeliveryStreamEncryption",
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/open-1",
    );
    assert_eq!(
        out["admin_tags"],
        serde_json::json!([{"Key": "owner", "Value": "admin"}, {"Key": "team", "Value": "web"}])
    );
    let channel = out["channel"].as_str().unwrap();
    assert_eq!(channel, "arn:aws:kinesis:us-east-1:000000000000:channel/ch");
    assert_eq!(out["describe_channel"], "ch");
    assert_eq!(out["list_channels"], 1);
    refusal("delete_channel", "kinesis:DeleteChannel", channel);
    refusal("update_channel", "kinesis:UpdateChannel", channel);
    refusal("create_channel", "kinesis:CreateChannel", "arn:aws:kinesis:us-east-1:000000000000:channel/ch2");
    assert_eq!(out["still_there"], "ACTIVE");
    // Glue's calls, signed for the service `glue`, need the action on the catalog, the database
    // and the table.
    assert_eq!(out["glue_get"], "orders");
    refusal("glue_create", "glue:CreateTable", &format!("{glue}:catalog"));
    refusal("glue_private", "glue:GetTable", &format!("{glue}:database/private"));

    // The audit log: the allowed and the refused calls, as the caller, data hidden.
    let puts = audit_events(
        &audit,
        |event| event["eventName"] == "PutRecord" && event["userIdentity"]["userName"] == "producer",
        2,
    );
    let refused: Vec<_> = puts.iter().filter(|event| event["errorCode"] == "AccessDeniedException").collect();
    assert_eq!(refused.len(), 1, "{puts:?}");
    assert_eq!(refused[0]["requestParameters"]["DeliveryStreamName"], "closed");
    assert_eq!(refused[0]["requestParameters"]["Record"]["Data"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    // CloudTrail's event source of each service: Firehose's calls are firehose's, channels are Kinesis'.
    assert!(puts.iter().all(|event| event["eventSource"] == "firehose.amazonaws.com"), "{puts:?}");
    let tags = audit_events(
        &audit,
        |event| event["eventName"] == "TagDeliveryStream" && event["userIdentity"]["userName"] == "admin",
        1,
    );
    assert_eq!(tags[0]["eventSource"], "firehose.amazonaws.com");
    let channel_refusals = audit_events(
        &audit,
        |event| event["eventName"] == "DeleteChannel" && event["errorCode"] == "AccessDeniedException",
        1,
    );
    assert_eq!(channel_refusals[0]["requestParameters"]["ChannelARN"], channel);
    assert_eq!(channel_refusals[0]["eventSource"], "kinesis.amazonaws.com");
    let glue_calls = audit_events(
        &audit,
        |event| event["eventName"] == "GetTable" && event["userIdentity"]["userName"] == "producer",
        2,
    );
    assert!(glue_calls.iter().all(|event| event["eventSource"] == "glue.amazonaws.com"), "{glue_calls:?}");
    assert_eq!(glue_calls.iter().filter(|event| event["errorCode"] == "AccessDeniedException").count(), 1);
}

/// The value of `family`'s series for `delivery_stream` in a scrape of the metrics port.
fn delivery_stream_sample(addr: std::net::SocketAddr, family: &str, delivery_stream: &str) -> Option<f64> {
    let (_, text) = common::http_get(addr, "/metrics");
    let series = format!("{family}{{delivery_stream=\"{delivery_stream}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&series)).map(|value| value.trim().parse().expect("a number"))
}

/// UpdateDestination: merged into the destination, versioned (a stale version id is
/// ConcurrentModificationException), shown by DescribeDeliveryStream, applied to what is
/// delivered next, and kept across a restart; and the delivery stream's figures on the
/// metrics port after a delivery.
#[test]
fn update_destination_changes_where_the_next_buffers_go_and_metrics_count_the_delivery() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let mut daemon = Daemon::start_with("kinesis", 1, &["--firehose-config", config.to_str().unwrap()]);
    let script = r#"
fh.create_delivery_stream(DeliveryStreamName="moving", ExtendedS3DestinationConfiguration={"RoleARN": args[0],
    "BucketARN": "arn:aws:s3:::files", "Prefix": "v1/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})
fh.put_record_batch(DeliveryStreamName="moving", Records=[{"Data": ("one %d\n" % i).encode()} for i in range(50)])
print(json.dumps({}))
"#;
    boto3(&daemon.http_addr.to_string(), script, &[ROLE]);
    wait_until("the first records under v1/", Duration::from_secs(60), || lines_under(&files.join("v1")).len() == 50);

    // The delivery stream's figures on the metrics port, labelled by delivery stream.
    let sample = |family: &str| delivery_stream_sample(daemon.metrics_addr, family, "moving");
    wait_until("DeliveryToS3.Records on /metrics", Duration::from_secs(30), || {
        sample("sluice_firehose_delivery_to_s3_records_total") == Some(50.0)
    });
    let bytes: usize = (0..50).map(|i| format!("one {i}\n").len()).sum();
    assert_eq!(sample("sluice_firehose_incoming_records_total"), Some(50.0));
    assert_eq!(sample("sluice_firehose_incoming_bytes_total"), Some(bytes as f64));
    assert_eq!(sample("sluice_firehose_delivery_to_s3_bytes_total"), Some(bytes as f64));
    let succeeded = sample("sluice_firehose_delivery_to_s3_success_succeeded_total").unwrap();
    assert!(succeeded >= 1.0 && Some(succeeded) == sample("sluice_firehose_delivery_to_s3_success_attempts_total"));
    assert_eq!(sample("sluice_firehose_delivery_to_s3_data_freshness_seconds"), Some(0.0), "nothing pending");
    let script = r#"
def describe():
    return fh.describe_delivery_stream(DeliveryStreamName="moving")["DeliveryStreamDescription"]
d = describe()
out = {"version_before": d["VersionId"], "destination_id": d["Destinations"][0]["DestinationId"]}
fh.update_destination(DeliveryStreamName="moving", CurrentDeliveryStreamVersionId=d["VersionId"],
    DestinationId=out["destination_id"], ExtendedS3DestinationUpdate={"Prefix": "v2/", "BufferingHints": {"SizeInMBs": 2}})
d = describe()
s3 = d["Destinations"][0]["ExtendedS3DestinationDescription"]
out["version_after"] = d["VersionId"]
out["prefix"], out["hints"] = s3["Prefix"], s3["BufferingHints"]
out["updated"] = "LastUpdateTimestamp" in d
out["stale"] = error_code(lambda: fh.update_destination(DeliveryStreamName="moving", CurrentDeliveryStreamVersionId="1",
    DestinationId=out["destination_id"], ExtendedS3DestinationUpdate={"Prefix": "stale/"}))
out["wrong_destination"] = error_code(lambda: fh.update_destination(DeliveryStreamName="moving",
    CurrentDeliveryStreamVersionId="2", DestinationId="destinationId-000000000009", S3DestinationUpdate={"Prefix": "x/"}))
out["invalid"] = error_code(lambda: fh.update_destination(DeliveryStreamName="moving", CurrentDeliveryStreamVersionId="2",
    DestinationId=out["destination_id"], ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 500}}))
out["unsupported"] = error_code(lambda: fh.update_destination(DeliveryStreamName="moving", CurrentDeliveryStreamVersionId="2",
    DestinationId=out["destination_id"], SplunkDestinationUpdate={"HECEndpoint": "https://splunk"}))
out["missing"] = error_code(lambda: fh.update_destination(DeliveryStreamName="nowhere", CurrentDeliveryStreamVersionId="1",
    DestinationId=out["destination_id"], S3DestinationUpdate={"Prefix": "x/"}))
out["version_unchanged"] = describe()["VersionId"]
fh.put_record_batch(DeliveryStreamName="moving", Records=[{"Data": ("two %d\n" % i).encode()} for i in range(50)])
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[])).unwrap();
    assert_eq!(out["version_before"], "1", "{out}");
    assert_eq!(out["destination_id"], "destinationId-000000000001");
    assert_eq!(out["version_after"], "2");
    assert_eq!(out["prefix"], "v2/");
    assert_eq!(out["hints"], serde_json::json!({"SizeInMBs": 2, "IntervalInSeconds": 1}), "merged, not replaced");
    assert_eq!(out["updated"], true);
    assert_eq!(out["stale"], "ConcurrentModificationException");
    assert_eq!(out["wrong_destination"], "InvalidArgumentException");
    assert_eq!(out["invalid"], "ValidationException");
    assert_eq!(out["unsupported"], "InvalidArgumentException");
    assert_eq!(out["missing"], "ResourceNotFoundException");
    assert_eq!(out["version_unchanged"], "2", "refused updates change nothing");
    wait_until("the records put after the update under v2/", Duration::from_secs(60), || {
        lines_under(&files.join("v2")).len() == 50
    });
    assert!(lines_under(&files.join("v2")).keys().all(|line| line.starts_with("two ")));
    assert_eq!(lines_under(&files.join("v1")).len(), 50, "what was delivered before stays where it was");

    // Durable: after a restart the description and the delivery follow the update.
    daemon.restart();
    let script = r#"
d = fh.describe_delivery_stream(DeliveryStreamName="moving")["DeliveryStreamDescription"]
fh.put_record_batch(DeliveryStreamName="moving", Records=[{"Data": ("three %d\n" % i).encode()} for i in range(50)])
print(json.dumps({"version": d["VersionId"], "prefix": d["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"]}))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[])).unwrap();
    assert_eq!(out, serde_json::json!({"version": "2", "prefix": "v2/"}));
    wait_until("the records put after the restart under v2/", Duration::from_secs(60), || {
        lines_under(&files.join("v2")).len() == 100
    });
}

/// Every journal segment of a data directory, concatenated: where a record's bytes rest.
fn journal_bytes(data_dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.file_name().unwrap().to_string_lossy().starts_with("journal-") {
            continue;
        }
        for segment in std::fs::read_dir(&dir).unwrap() {
            let path = segment.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "seg") {
                out.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A key-store file (`--kms-keys`) with one customer managed key.
const CUSTOMER_KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn key_store(at: &Path) -> PathBuf {
    use base64::Engine as _;
    let material = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<u8>>());
    let path = at.join("keys.toml");
    std::fs::write(
        &path,
        format!("[[key]]\nkey_id = \"{CUSTOMER_KEY_ID}\"\naliases = [\"alias/firehose\"]\nmaterial = \"{material}\"\n"),
    )
    .unwrap();
    path
}

/// Tags (TagDeliveryStream, UntagDeliveryStream, ListTagsForDeliveryStream with paging, AWS's
/// limits and errors) and encryption at rest (Start/StopDeliveryStreamEncryption with the
/// AWS-owned stand-in and a customer managed key; the records buffered in the hidden stream
/// sealed on disk while it is enabled, delivered in plaintext), through boto3, surviving a
/// restart.
#[test]
fn boto3_tags_and_encryption_of_a_delivery_stream_survive_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let keys = key_store(work.path());
    let mut daemon = Daemon::start_with(
        "kinesis",
        1,
        &["--firehose-config", config.to_str().unwrap(), "--kms-keys", keys.to_str().unwrap()],
    );
    let script = r#"
role, key_arn = args
out = {}
fh.create_delivery_stream(DeliveryStreamName="t", S3DestinationConfiguration={"RoleARN": role,
    "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
    Tags=[{"Key": "team", "Value": "web"}])
fh.tag_delivery_stream(DeliveryStreamName="t", Tags=[{"Key": "k%02d" % i, "Value": "v%d" % i} for i in range(40)])
fh.tag_delivery_stream(DeliveryStreamName="t", Tags=[{"Key": "team", "Value": "data"}, {"Key": "bare"}])
out["too_many"] = error_code(lambda: fh.tag_delivery_stream(DeliveryStreamName="t",
    Tags=[{"Key": "x%02d" % i} for i in range(9)]))
out["reserved"] = error_code(lambda: fh.tag_delivery_stream(DeliveryStreamName="t", Tags=[{"Key": "aws:owner"}]))
out["bad_char"] = error_code(lambda: fh.tag_delivery_stream(DeliveryStreamName="t", Tags=[{"Key": "a*b"}]))
out["tag_missing"] = error_code(lambda: fh.tag_delivery_stream(DeliveryStreamName="nope", Tags=[{"Key": "a"}]))
out["list_missing"] = error_code(lambda: fh.list_tags_for_delivery_stream(DeliveryStreamName="nope"))
out["bad_limit"] = error_code(lambda: fh.list_tags_for_delivery_stream(DeliveryStreamName="t", Limit=51))
keys, start, pages = [], None, 0
while True:
    kw = {"ExclusiveStartTagKey": start} if start else {}
    page = fh.list_tags_for_delivery_stream(DeliveryStreamName="t", Limit=15, **kw)
    pages += 1
    keys += [t["Key"] for t in page["Tags"]]
    if not page["HasMoreTags"]:
        break
    start = page["Tags"][-1]["Key"]
out["pages"], out["keys"] = pages, keys
tags = {t["Key"]: t.get("Value") for t in fh.list_tags_for_delivery_stream(DeliveryStreamName="t")["Tags"]}
out["team"], out["bare"] = tags["team"], tags.get("bare", "absent-value")
fh.untag_delivery_stream(DeliveryStreamName="t", TagKeys=["k%02d" % i for i in range(40)] + ["never-set"])
page = fh.list_tags_for_delivery_stream(DeliveryStreamName="t")
out["after_untag"] = {"Tags": page["Tags"], "HasMoreTags": page["HasMoreTags"]}

def status():
    return fh.describe_delivery_stream(DeliveryStreamName="t")["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
def wait_for(want):
    for _ in range(200):
        s = status()
        if s["Status"] == want:
            return s
        time.sleep(0.05)
    raise AssertionError(status())
out["initial"] = status()
out["put_plain"] = fh.put_record(DeliveryStreamName="t", Record={"Data": b"plain-before-start\n"})["Encrypted"]
fh.start_delivery_stream_encryption(DeliveryStreamName="t")
out["owned"] = wait_for("ENABLED")
batch = fh.put_record_batch(DeliveryStreamName="t", Records=[{"Data": b"sealed-owned-%03d\n" % i} for i in range(20)])
out["batch_encrypted"], out["batch_failed"] = batch["Encrypted"], batch["FailedPutCount"]
out["unknown_key"] = error_code(lambda: fh.start_delivery_stream_encryption(DeliveryStreamName="t",
    DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"}))
out["arn_without_customer"] = error_code(lambda: fh.start_delivery_stream_encryption(DeliveryStreamName="t",
    DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK", "KeyARN": key_arn}))
fh.start_delivery_stream_encryption(DeliveryStreamName="t",
    DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key_arn})
out["customer"] = wait_for("ENABLED")
out["put_sealed"] = fh.put_record(DeliveryStreamName="t", Record={"Data": b"sealed-customer\n"})["Encrypted"]
print(json.dumps(out))
"#;
    let key_arn = format!("arn:aws:kms:us-east-1:000000000000:key/{CUSTOMER_KEY_ID}");
    let endpoint = daemon.http_addr.to_string();
    let out: serde_json::Value = serde_json::from_str(&boto3(&endpoint, script, &[ROLE, &key_arn])).unwrap();
    assert_eq!(out["too_many"], "LimitExceededException", "{out}");
    assert_eq!(out["reserved"], "ValidationException");
    assert_eq!(out["bad_char"], "ValidationException");
    assert_eq!(out["tag_missing"], "ResourceNotFoundException");
    assert_eq!(out["list_missing"], "ResourceNotFoundException");
    assert_eq!(out["bad_limit"], "ValidationException");
    let mut want: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    want.extend(["bare".to_string(), "team".to_string()]);
    want.sort();
    assert_eq!(out["keys"], serde_json::json!(want), "every tag once, in key order, over pages");
    assert_eq!(out["pages"], 3);
    assert_eq!((out["team"].as_str(), out["bare"].is_null()), (Some("data"), true), "{out}");
    assert_eq!(
        out["after_untag"],
        serde_json::json!({"Tags": [{"Key": "bare"}, {"Key": "team", "Value": "data"}], "HasMoreTags": false})
    );
    assert_eq!(out["initial"], serde_json::json!({"Status": "DISABLED"}));
    assert_eq!(out["put_plain"], false);
    assert_eq!(out["owned"], serde_json::json!({"Status": "ENABLED", "KeyType": "AWS_OWNED_CMK"}));
    assert_eq!((out["batch_encrypted"].as_bool(), out["batch_failed"].as_u64()), (Some(true), Some(0)));
    assert_eq!(out["unknown_key"], "InvalidKMSResourceException");
    assert_eq!(out["arn_without_customer"], "InvalidArgumentException");
    assert_eq!(
        out["customer"],
        serde_json::json!({"Status": "ENABLED", "KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key_arn})
    );
    assert_eq!(out["put_sealed"], true);

    // The buffered records rest sealed in the journal; delivery opens them.
    let disk = journal_bytes(daemon.data_dir());
    assert!(contains(&disk, b"plain-before-start"), "records put before Start stay as they were");
    assert!(!contains(&disk, b"sealed-owned-") && !contains(&disk, b"sealed-customer"), "sealed on disk");
    wait_until("the records in the directory", Duration::from_secs(60), || lines_under(&files).len() == 22);
    let lines = lines_under(&files);
    assert!(lines.contains_key("sealed-customer") && lines.contains_key("sealed-owned-019"), "{lines:?}");

    // Tags and the encryption configuration survive a restart; Stop turns sealing off.
    daemon.restart();
    let script = r#"
out = {"tags": fh.list_tags_for_delivery_stream(DeliveryStreamName="t")["Tags"]}
d = fh.describe_delivery_stream(DeliveryStreamName="t")["DeliveryStreamDescription"]
out["encryption"] = d["DeliveryStreamEncryptionConfiguration"]
fh.stop_delivery_stream_encryption(DeliveryStreamName="t")
for _ in range(200):
    s = fh.describe_delivery_stream(DeliveryStreamName="t")["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    if s["Status"] == "DISABLED":
        break
    time.sleep(0.05)
out["stopped"] = s
out["put_after_stop"] = fh.put_record(DeliveryStreamName="t", Record={"Data": b"plain-after-stop\n"})["Encrypted"]
fh.stop_delivery_stream_encryption(DeliveryStreamName="t")
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[])).unwrap();
    assert_eq!(out["tags"], serde_json::json!([{"Key": "bare"}, {"Key": "team", "Value": "data"}]));
    assert_eq!(out["encryption"]["KeyARN"], key_arn.as_str(), "{out}");
    assert_eq!(out["stopped"], serde_json::json!({"Status": "DISABLED"}));
    assert_eq!(out["put_after_stop"], false);
    wait_until("the record put after Stop", Duration::from_secs(60), || {
        lines_under(&files).contains_key("plain-after-stop")
    });
    assert!(contains(&journal_bytes(daemon.data_dir()), b"plain-after-stop"));
}

/// Runs `sluice firehose ARGS…` against `http_endpoint`, signed with test credentials: its exit
/// code, stdout and stderr.
fn sluice_firehose(http_endpoint: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sluice_bin())
        .args(["--http-endpoint", http_endpoint, "firehose"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("sluice runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8");
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// [`sluice_firehose`] that must succeed; its stdout as JSON (`{}` when it printed nothing).
fn sluice_ok(http_endpoint: &str, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = sluice_firehose(http_endpoint, args);
    assert_eq!(code, 0, "sluice firehose {args:?}: {stderr}");
    if stdout.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// Every `sluice firehose` command against a real sluiced: a delivery stream created, written
/// to (delivered to a directory), tagged, encrypted, updated and deleted, and an error printed
/// as the AWS CLI prints it.
#[test]
fn sluice_firehose_commands_drive_a_delivery_stream() {
    use base64::Engine as _;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let daemon = Daemon::start_with("kinesis", 1, &["--firehose-config", config.to_str().unwrap()]);
    let http = daemon.http_addr.to_string();
    let http = http.as_str();

    let destination = format!(
        r#"{{"RoleARN": "{ROLE}", "BucketARN": "arn:aws:s3:::files", "BufferingHints": {{"SizeInMBs": 1, "IntervalInSeconds": 1}}}}"#
    );
    let created = sluice_ok(
        http,
        &[
            "create-delivery-stream",
            "--delivery-stream-name",
            "cli",
            "--extended-s3-destination-configuration",
            &destination,
            "--tags",
            "Key=team,Value=web",
        ],
    );
    assert_eq!(created["DeliveryStreamARN"], "arn:aws:firehose:us-east-1:000000000000:deliverystream/cli");
    let listed = sluice_ok(http, &["list-delivery-streams"]);
    assert_eq!(listed["DeliveryStreamNames"], serde_json::json!(["cli"]));

    let put = sluice_ok(
        http,
        &["put-record", "--delivery-stream-name", "cli", "--record", &format!("Data={}", b64("cli-0\n"))],
    );
    assert!(put["RecordId"].is_string(), "{put}");
    let records: Vec<serde_json::Value> =
        (1..=20).map(|i| serde_json::json!({"Data": b64(&format!("cli-{i}\n"))})).collect();
    let records_file = work.path().join("records.json");
    std::fs::write(&records_file, serde_json::to_vec(&records).unwrap()).unwrap();
    let records_param = format!("file://{}", records_file.display());
    let batch = sluice_ok(http, &["put-record-batch", "--delivery-stream-name", "cli", "--records", &records_param]);
    assert_eq!(batch["FailedPutCount"], 0, "{batch}");

    sluice_ok(
        http,
        &["tag-delivery-stream", "--delivery-stream-name", "cli", "--tags", "Key=env,Value=prod", "Key=tier"],
    );
    sluice_ok(http, &["untag-delivery-stream", "--delivery-stream-name", "cli", "--tag-keys", "team"]);
    let tags = sluice_ok(http, &["list-tags-for-delivery-stream", "--delivery-stream-name", "cli", "--limit", "1"]);
    assert_eq!(tags, serde_json::json!({"Tags": [{"Key": "env", "Value": "prod"}], "HasMoreTags": true}));
    let tags = sluice_ok(
        http,
        &["list-tags-for-delivery-stream", "--delivery-stream-name", "cli", "--exclusive-start-tag-key", "env"],
    );
    assert_eq!(tags, serde_json::json!({"Tags": [{"Key": "tier"}], "HasMoreTags": false}));

    sluice_ok(
        http,
        &[
            "start-delivery-stream-encryption",
            "--delivery-stream-name",
            "cli",
            "--delivery-stream-encryption-configuration-input",
            "KeyType=AWS_OWNED_CMK",
        ],
    );
    let described = sluice_ok(http, &["describe-delivery-stream", "--delivery-stream-name", "cli"]);
    let description = &described["DeliveryStreamDescription"];
    let status = description["DeliveryStreamEncryptionConfiguration"]["Status"].as_str().unwrap();
    assert!(status == "ENABLING" || status == "ENABLED", "{described}");
    let version = description["VersionId"].as_str().unwrap().to_string();
    let destination_id = description["Destinations"][0]["DestinationId"].as_str().unwrap().to_string();
    sluice_ok(
        http,
        &[
            "update-destination",
            "--delivery-stream-name",
            "cli",
            "--current-delivery-stream-version-id",
            &version,
            "--destination-id",
            &destination_id,
            "--extended-s3-destination-update",
            r#"{"Prefix": "v2/"}"#,
        ],
    );
    let described = sluice_ok(http, &["describe-delivery-stream", "--delivery-stream-name", "cli"]);
    let s3 = &described["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(s3["Prefix"], "v2/", "{described}");

    // Stop once the start's short UPDATING window has passed (within it, a change is
    // ResourceInUseException).
    wait_until("encryption enabled", Duration::from_secs(30), || {
        let described = sluice_ok(http, &["describe-delivery-stream", "--delivery-stream-name", "cli"]);
        described["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED"
    });
    sluice_ok(http, &["stop-delivery-stream-encryption", "--delivery-stream-name", "cli"]);

    wait_until("the CLI's records in the directory", Duration::from_secs(60), || lines_under(&files).len() == 21);

    // Errors as the AWS CLI prints them, exit status 255; bad parameters refused before sending.
    let (code, stdout, stderr) =
        sluice_firehose(http, &["describe-delivery-stream", "--delivery-stream-name", "missing"]);
    assert_eq!((code, stdout.as_str()), (255, ""));
    assert!(
        stderr.contains(
            "An error occurred (ResourceNotFoundException) when calling the DescribeDeliveryStream operation: Firehose missing under account 000000000000 not found."
        ),
        "{stderr}"
    );
    let (code, _, stderr) =
        sluice_firehose(http, &["tag-delivery-stream", "--delivery-stream-name", "cli", "--tags", "Key=aws:x"]);
    assert_eq!(code, 255);
    assert!(stderr.contains("(ValidationException) when calling the TagDeliveryStream operation"), "{stderr}");
    let (code, _, stderr) =
        sluice_firehose(http, &["put-record", "--delivery-stream-name", "cli", "--record", "Data=!"]);
    assert_eq!(code, 255);
    assert!(stderr.contains("--record"), "{stderr}");

    sluice_ok(http, &["delete-delivery-stream", "--delivery-stream-name", "cli"]);
    assert_eq!(sluice_ok(http, &["list-delivery-streams"])["DeliveryStreamNames"], serde_json::json!([]));
}

/// Issue 15's "Done when": a boto3 script written for AWS (a Glue table, a Kinesis stream, a
/// `KinesisStreamAsSource` delivery stream converting to Parquet under hourly prefixes, records
/// put, every object read back with pyarrow) runs against sluiced with only the endpoints and
/// the credentials changed. The script fails if a record is lost, duplicated, mis-converted, or
/// an object is not under its hour; it also checks the one record that does not fit the table
/// lands under `format-conversion-failed/`.
#[test]
fn aws_firehose_script_with_a_glue_table_writes_parquet_under_hourly_prefixes() {
    let s3 = S3Server::start(&["lake"]);
    let work = tempfile::tempdir().unwrap();
    let config = firehose_config(work.path(), &work.path().join("files"), Some(&s3));
    let daemon = Daemon::start_with("kinesis", 2, &["--firehose-config", config.to_str().unwrap()]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firehose/tests/aws_parquet_script.py");
    let started = Instant::now();
    let out = Command::new(python_path())
        .arg(&script)
        .args(["lake", ROLE])
        .env("SLUICE_ENDPOINT", format!("http://{}", daemon.http_addr))
        .env("S3_ENDPOINT", &s3.url)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the AWS script failed against sluiced:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script prints its summary");
    assert_eq!(summary["records"], 1000, "{summary}");
    assert_eq!(summary["errors"], 1, "{summary}");
    assert_eq!(summary["error_code"], "DataFormatConversion.MalformedData", "{summary}");
    eprintln!("the AWS script ran in {:?}: {summary}", started.elapsed());
}

/// The Glue Data Catalog through boto3's `glue` client: AWS's answers and errors, names in lower
/// case, paging, UpdateTable's version check; Parquet conversion reading its table at each
/// buffer (records converted while the table is missing go to `format-conversion-failed` with
/// `DataFormatConversion.EntityNotFound`, the next ones convert once it exists); and the
/// catalog surviving a SIGKILL.
#[test]
fn boto3_glue_catalog_feeds_parquet_conversion_and_survives_sigkill() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    let config = firehose_config(work.path(), &files, None);
    let mut daemon = Daemon::start_with("kinesis", 2, &["--firehose-config", config.to_str().unwrap()]);
    let script = r#"
out = {}
table = {"Name": "Orders", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
    "PartitionKeys": [{"Name": "dt", "Type": "string"}],
    "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint", "Comment": "key"}, {"Name": "name", "Type": "varchar(20)"}],
        "Location": "s3://files/orders/",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}}
def error(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"]]
    return None
glue.create_database(DatabaseInput={"Name": "Shop", "Description": "orders"})
out["db_again"] = error(lambda: glue.create_database(DatabaseInput={"Name": "shop"}))
out["db_missing"] = error(lambda: glue.get_database(Name="nowhere"))
out["db"] = glue.get_database(Name="SHOP")["Database"]["Name"]
out["dbs"] = [d["Name"] for d in glue.get_databases()["DatabaseList"]]
out["table_no_db"] = error(lambda: glue.create_table(DatabaseName="nowhere", TableInput=table))
glue.create_table(DatabaseName="shop", TableInput=table)
out["table_again"] = error(lambda: glue.create_table(DatabaseName="shop", TableInput=table))
out["too_long"] = error(lambda: glue.create_table(DatabaseName="shop", TableInput=dict(table, Name="t" * 256)))
t = glue.get_table(DatabaseName="shop", Name="ORDERS")["Table"]
out["table"] = {k: t[k] for k in ["Name", "DatabaseName", "VersionId", "CatalogId", "TableType", "Parameters", "PartitionKeys"]}
out["columns"] = t["StorageDescriptor"]["Columns"]
out["times"] = t["CreateTime"] == t["UpdateTime"] and t["CreateTime"].year >= 2026
out["table_missing"] = error(lambda: glue.get_table(DatabaseName="shop", Name="nothing"))
glue.create_table(DatabaseName="shop", TableInput=dict(table, Name="returns"))
page = glue.get_tables(DatabaseName="shop", MaxResults=1)
out["page1"] = [x["Name"] for x in page["TableList"]]
out["page2"] = [x["Name"] for x in glue.get_tables(DatabaseName="shop", NextToken=page["NextToken"])["TableList"]]
out["stale"] = error(lambda: glue.update_table(DatabaseName="shop", TableInput=table, VersionId="5"))
glue.update_table(DatabaseName="shop", TableInput=dict(table, Description="v1"), VersionId="0")
out["updated"] = glue.get_table(DatabaseName="shop", Name="orders")["Table"]["VersionId"]
glue.delete_table(DatabaseName="shop", Name="returns")
out["deleted"] = error(lambda: glue.delete_table(DatabaseName="shop", Name="returns"))
conversion = lambda table_name: {"Enabled": True,
    "SchemaConfiguration": {"DatabaseName": "shop", "TableName": table_name, "RoleARN": args[0]},
    "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
    "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}
destination = lambda table_name: {"RoleARN": args[0], "BucketARN": "arn:aws:s3:::files",
    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
    "DataFormatConversionConfiguration": conversion(table_name)}
no_role = destination("later")
del no_role["DataFormatConversionConfiguration"]["SchemaConfiguration"]["RoleARN"]
out["no_role"] = error(lambda: fh.create_delivery_stream(DeliveryStreamName="norole", ExtendedS3DestinationConfiguration=no_role))
fh.create_delivery_stream(DeliveryStreamName="later", ExtendedS3DestinationConfiguration=destination("later"))
fh.put_record_batch(DeliveryStreamName="later", Records=[{"Data": json.dumps({"id": i, "name": "n%d" % i}).encode()} for i in range(3)])
print(json.dumps(out))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[ROLE])).unwrap();
    let error = |key: &str, code: &str, message: &str| {
        assert_eq!(out[key][0], code, "{key}: {out}");
        assert!(out[key][1].as_str().unwrap().contains(message), "{key}: {out}");
    };
    error("db_again", "AlreadyExistsException", "Database already exists.");
    error("db_missing", "EntityNotFoundException", "Database nowhere not found.");
    error("table_no_db", "EntityNotFoundException", "Database nowhere not found.");
    error("table_again", "AlreadyExistsException", "Table already exists.");
    error(
        "too_long",
        "ValidationException",
        "at 'tableInput.name' failed to satisfy constraint: Member must have length less than or equal to 255",
    );
    error("table_missing", "EntityNotFoundException", "Table nothing not found.");
    error("stale", "ConcurrentModificationException", "concurrent modifications");
    error("deleted", "EntityNotFoundException", "Table returns not found.");
    error("no_role", "InvalidArgumentException", "SchemaConfiguration.RoleARN is required");
    assert_eq!(out["db"], "shop");
    assert_eq!(out["dbs"], serde_json::json!(["shop"]));
    assert_eq!(
        out["table"],
        serde_json::json!({"Name": "orders", "DatabaseName": "shop", "VersionId": "0", "CatalogId": "000000000000",
            "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
            "PartitionKeys": [{"Name": "dt", "Type": "string"}]})
    );
    assert_eq!(out["columns"][0], serde_json::json!({"Name": "id", "Type": "bigint", "Comment": "key"}));
    assert_eq!(out["times"], true);
    assert_eq!(
        (out["page1"].clone(), out["page2"].clone()),
        (serde_json::json!(["orders"]), serde_json::json!(["returns"]))
    );
    assert_eq!(out["updated"], "1");

    // The table `later` does not exist: the records go to the error output, as AWS sends them.
    let errors = |files: &Path| -> Vec<serde_json::Value> {
        files_under(files)
            .into_iter()
            .filter(|(path, _)| path.to_string_lossy().contains("format-conversion-failed"))
            .flat_map(|(_, lines)| lines.into_iter().map(|line| serde_json::from_str(&line).unwrap()))
            .collect()
    };
    wait_until("the unconverted records", Duration::from_secs(60), || errors(&files).len() == 3);
    for record in errors(&files) {
        assert_eq!(record["errorCode"], "DataFormatConversion.EntityNotFound", "{record}");
    }
    // Once the table exists, the next buffer converts with its columns (AWS reads `LATEST`).
    let script = r#"
glue.create_table(DatabaseName="shop", TableInput={"Name": "later", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"}]}})
fh.put_record_batch(DeliveryStreamName="later", Records=[{"Data": json.dumps({"id": i, "name": "n%d" % i}).encode()} for i in range(3, 6)])
"#;
    boto3(&daemon.http_addr.to_string(), script, &[]);
    let parquet = |files: &Path| -> Vec<PathBuf> {
        files_under(files).into_keys().filter(|path| path.extension().is_some_and(|e| e == "parquet")).collect()
    };
    let read = r#"
import pyarrow.parquet as pq, os
rows = []
for path in args:
    rows += pq.read_table(path).to_pylist()
print(json.dumps(sorted(rows, key=lambda r: r["id"])))
sys.stdout.flush()
os._exit(0)
"#;
    // The three records may land in more than one buffer, so in more than one object.
    let rows = || -> serde_json::Value {
        let paths: Vec<String> = parquet(&files).iter().map(|p| p.display().to_string()).collect();
        if paths.is_empty() {
            return serde_json::json!([]);
        }
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        serde_json::from_str(&boto3(&daemon.http_addr.to_string(), read, &paths)).unwrap()
    };
    wait_until("the converted records", Duration::from_secs(60), || {
        rows().as_array().is_some_and(|rows| rows.len() >= 3)
    });
    assert_eq!(rows(), serde_json::json!([{"id": 3, "name": "n3"}, {"id": 4, "name": "n4"}, {"id": 5, "name": "n5"}]));
    assert_eq!(errors(&files).len(), 3, "nothing more failed");

    // Every acknowledged change survives a SIGKILL.
    daemon.kill_and_restart_same_ports();
    let script = r#"
t = glue.get_table(DatabaseName="shop", Name="orders")["Table"]
print(json.dumps({"version": t["VersionId"], "description": t.get("Description"),
    "tables": [x["Name"] for x in glue.get_tables(DatabaseName="shop")["TableList"]]}))
"#;
    let out: serde_json::Value = serde_json::from_str(&boto3(&daemon.http_addr.to_string(), script, &[])).unwrap();
    assert_eq!(out, serde_json::json!({"version": "1", "description": "v1", "tables": ["later", "orders"]}));
}
