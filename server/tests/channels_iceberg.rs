//! A Kinesis channel from a Sluice stream to an Apache Iceberg table, read back with
//! `pyiceberg`: the real sluiced, a real SeaweedFS server, boto3's `kinesis` client (with
//! Sluice's `SluiceColumns` member added to its model from `firehose/botocore`), and
//! pyiceberg's `StaticTable` over pyarrow's S3 file system, an implementation of the table
//! format independent of the `iceberg` crate that wrote it. Every record is checked field by
//! field; records that do not fit the columns are found in the dead-letter bucket; then
//! sluiced is SIGKILLed while records are put and committed, restarted, and every acknowledged
//! record is in the table exactly once.
//!
//! Built only with `--features iceberg`. Needs `firehose/tests/setup.sh` (boto3, pyiceberg and
//! SeaweedFS in `.venv`).
#![cfg(feature = "iceberg")]

mod common;
#[path = "../../firehose/tests/support/seaweedfs.rs"]
mod seaweedfs;

use common::Daemon;
use seaweedfs::{S3Server, ACCESS_KEY, SECRET_KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python_path() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run firehose/tests/setup.sh", python.display());
    python
}

/// Python with boto3's model extended by Sluice's members (`AWS_DATA_PATH`).
fn python() -> Command {
    let mut command = Command::new(python_path());
    command.env("AWS_DATA_PATH", root().join("firehose/botocore"));
    command
}

const PRELUDE: &str = r#"
import datetime, json, sys, boto3, botocore
from botocore.config import Config
session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
kinesis = session.client("kinesis", endpoint_url="http://" + sys.argv[1],
                         config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))
args = sys.argv[2:]
ROLE = "arn:aws:iam::000000000000:role/channel"
def record(n):
    # Every column type; a name with quotes and non-ASCII text; a NULL every 7th record.
    r = {"id": n, "score": n * 0.25 - 3.5, "ok": n % 3 == 0, "at": 1764633600000 + n * 1001,
         "day": "2026-12-%02d" % (1 + n % 28), "small": n % 30000 - 15000}
    if n % 7:
        r["name"] = "n\u00e9-%d \"q\" \u2713" % n
    return r
"#;

/// Runs a Python script (`kinesis` is a boto3 client of `endpoint`); returns its stdout as JSON.
fn script(endpoint: &str, body: &str, args: &[&str]) -> Value {
    let out =
        python().arg("-c").arg(format!("{PRELUDE}\n{body}")).arg(endpoint).args(args).output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// The table's rows and snapshots as pyiceberg reads them (`StaticTable` at the table's
/// location, which follows `metadata/version-hint.text`), rows keyed by id, with each id's count.
struct TableRead {
    rows: BTreeMap<i64, (Value, usize)>,
    snapshots: usize,
    schema: String,
}

fn read_table(s3: &S3Server) -> Option<TableRead> {
    let body = r#"
from pyiceberg.table import StaticTable
props = {"s3.endpoint": args[0], "s3.access-key-id": args[1], "s3.secret-access-key": args[2],
         "s3.region": "us-east-1", "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
try:
    table = StaticTable.from_metadata("s3://lake/analytics/events", properties=props)
except FileNotFoundError:
    print("null"); sys.exit(0)
rows = table.scan().to_arrow().to_pylist()
def plain(v):
    if isinstance(v, datetime.datetime):
        # Microseconds since the epoch, exactly (the table's unit).
        return (v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v
print(json.dumps({"rows": [{k: plain(v) for k, v in r.items()} for r in rows],
                  "snapshots": len(table.metadata.snapshots), "schema": str(table.schema())}))
"#;
    let out = script("unused", body, &[&s3.url, ACCESS_KEY, SECRET_KEY]);
    if out.is_null() {
        return None;
    }
    let mut rows = BTreeMap::new();
    for row in out["rows"].as_array().expect("rows") {
        let id = row["id"].as_i64().expect("an id");
        let entry = rows.entry(id).or_insert((row.clone(), 0));
        entry.1 += 1;
    }
    Some(TableRead {
        rows,
        snapshots: out["snapshots"].as_u64().unwrap() as usize,
        schema: out["schema"].as_str().unwrap().to_string(),
    })
}

/// What record `n` must read back as: the same values, typed by the table (`at` in
/// microseconds since the epoch, UTC; `day` a date), NULL where the record had no `name`.
fn expected_row(n: i64) -> Value {
    let at_ms = 1_764_633_600_000 + n * 1001;
    let name = if n % 7 != 0 { json!(format!("n\u{e9}-{n} \"q\" \u{2713}")) } else { Value::Null };
    json!({
        "id": n,
        "name": name,
        "score": n as f64 * 0.25 - 3.5,
        "ok": n % 3 == 0,
        "at": at_ms * 1000,
        "day": format!("2026-12-{:02}", 1 + n % 28),
        "small": n % 30000 - 15000,
    })
}

fn firehose_config(at: &Path, s3: &S3Server) -> PathBuf {
    let text = format!(
        "channel-data-freshness-ms = 1000\n[buckets.lake]\nendpoint = {:?}\naccess-key-id = {ACCESS_KEY:?}\nsecret-access-key = {SECRET_KEY:?}\n",
        s3.url
    );
    let path = at.join("firehose.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A producer putting records `from..from + 100 × batches` to stream `events` in batches of
/// 100, writing each acknowledged id to `acked`; it stops at the first failure (sluiced killed).
fn producer(endpoint: &str, acked: &Path, from: u64, batches: u64) -> Child {
    let body = format!(
        r#"{PRELUDE}
acked = open(args[0], "a")
start = int(args[1])
for b in range(int(args[2])):
    ids = [start + b * 100 + i for i in range(100)]
    try:
        r = kinesis.put_records(StreamName="events", Records=[{{"Data": json.dumps(record(n)).encode(), "PartitionKey": str(n)}} for n in ids])
    except Exception:
        break
    for n, entry in zip(ids, r["Records"]):
        if "SequenceNumber" in entry:
            acked.write("%d\n" % n)
    acked.flush()
"#
    );
    python()
        .arg("-c")
        .arg(body)
        .arg(endpoint)
        .arg(acked)
        .arg(from.to_string())
        .arg(batches.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("producer starts")
}

#[test]
fn channel_to_an_iceberg_table_is_read_back_by_pyiceberg_exactly_once_across_a_sigkill() {
    let s3 = S3Server::start(&["lake"]);
    let work = tempfile::tempdir().unwrap();
    let config = firehose_config(work.path(), &s3);
    let mut daemon = Daemon::start_with("unlimited", 2, &["--firehose-config", config.to_str().unwrap()]);
    let endpoint = daemon.http_addr.to_string();

    // A channel creating table analytics.events, and 1,000 records of every column type, 3 of
    // them unfit for the columns.
    let create = r#"
kinesis.create_stream(StreamName="events", ShardCount=2)
arn = kinesis.describe_stream_summary(StreamName="events")["StreamDescriptionSummary"]["StreamARN"]
columns = [{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string", "Comment": "who"},
           {"Name": "score", "Type": "double"}, {"Name": "ok", "Type": "boolean"},
           {"Name": "at", "Type": "timestamp"}, {"Name": "day", "Type": "date"},
           {"Name": "small", "Type": "smallint"}]
tables = {"DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::lake",
              "ExpectedBucketOwner": "000000000000", "ErrorOutputPrefix": "dlq/"},
          "S3TablesConfigurationList": [{"TableBucketARN": "arn:aws:s3tables:us-east-1:000000000000:bucket/lake",
              "Namespace": "analytics", "TableName": "events", "CompressionType": "ZSTD", "SluiceColumns": columns}]}
def create(**extra):
    params = dict(ChannelName="events-to-table", ServiceExecutionRoleARN=ROLE,
        StreamConfigurationList=[{"StreamARN": arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}],
        S3TablesDestinationConfiguration=tables)
    params.update(extra)
    try:
        return kinesis.create_channel(**params)["ChannelDescription"]
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
out = {}
bad_type = json.loads(json.dumps(tables))
bad_type["S3TablesConfigurationList"][0]["SluiceColumns"] = [{"Name": "x", "Type": "map<string,int>"}]
out["bad_type"] = create(ChannelName="bad", S3TablesDestinationConfiguration=bad_type)
partitioned = json.loads(json.dumps(tables))
partitioned["S3TablesConfigurationList"][0]["PartitionSpec"] = {"PartitionFields": [{"Transform": "TIME_HOUR", "SourceName": "at"}]}
out["partitioned"] = create(ChannelName="bad", S3TablesDestinationConfiguration=partitioned)
created = create()
out["status"] = created["ChannelStatus"]
out["same_table"] = create(ChannelName="again")
out["described"] = kinesis.describe_channel(ChannelARN=created["ChannelARN"])["ChannelDescription"]["S3TablesDestinationConfiguration"]["S3TablesConfigurationList"][0]["TableName"]
summary = kinesis.list_channels()["ChannelSummaries"][0]
out["type"] = summary["ChannelDestinationType"]
entries = [{"Data": json.dumps(record(n)).encode(), "PartitionKey": str(n)} for n in range(1000)]
entries[10]["Data"] = b"not json"
entries[20]["Data"] = json.dumps(dict(record(20), id="twenty")).encode()
entries[30]["Data"] = b"[1, 2]"
out["failed_puts"] = sum(kinesis.put_records(StreamName="events", Records=entries[i:i + 500])["FailedRecordCount"]
                         for i in (0, 500))
print(json.dumps(out))
"#;
    let out = script(&endpoint, create, &[]);
    assert_eq!(out["bad_type"], "InvalidArgumentException", "{out}");
    assert_eq!(out["partitioned"], "InvalidArgumentException", "{out}");
    assert_eq!(out["status"], "CREATING", "{out}");
    assert_eq!(out["same_table"], "ResourceInUseException", "a table has one writer: {out}");
    assert_eq!(out["described"], "events", "{out}");
    assert_eq!(out["type"], "S3_TABLES", "{out}");
    assert_eq!(out["failed_puts"], 0);

    let unfit = [10, 20, 30];
    let fit = || (0..1000i64).filter(|n| !unfit.contains(n));
    let mut read = None;
    wait_until("997 rows in the table", Duration::from_secs(90), || {
        read = read_table(&s3);
        read.as_ref().is_some_and(|t| t.rows.len() >= 997)
    });
    let table = read.unwrap();
    assert!(table.schema.contains("at: optional timestamptz"), "{}", table.schema);
    assert!(table.schema.contains("small: optional int"), "{}", table.schema);
    for n in fit() {
        let (row, count) = table.rows.get(&n).unwrap_or_else(|| panic!("record {n} is missing"));
        assert_eq!(*count, 1, "record {n} is in the table {count} times");
        assert_eq!(row, &expected_row(n), "record {n}");
    }
    assert_eq!(table.rows.len(), 997, "nothing but the records put");
    // The unfit records are in the dead-letter bucket, in AWS's error record format.
    let mut dead = BTreeMap::new();
    for (key, body) in s3.objects("lake") {
        if key.starts_with("dlq/format-conversion-failed/") {
            for line in String::from_utf8(body).unwrap().lines() {
                let error: Value = serde_json::from_str(line).unwrap();
                assert_eq!(error["errorCode"], "DataFormatConversion.MalformedData");
                let raw = error["rawData"].as_str().unwrap().to_string();
                *dead.entry(raw).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(dead.len(), 3, "the three unfit records in the dead-letter bucket: {dead:?}");
    eprintln!("first phase: 997 rows in {} snapshots", table.snapshots);

    // SIGKILL while a producer puts and sluiced commits; after the restart every acknowledged
    // record is in the table once: the snapshot's positions, not the checkpoint, say what is in.
    let acked_path = work.path().join("acked.txt");
    let acked = || -> Vec<i64> {
        std::fs::read_to_string(&acked_path).unwrap_or_default().lines().map(|l| l.parse().unwrap()).collect()
    };
    let start = 1000u64;
    let batches = 1_000;
    let mut producer = producer(&endpoint, &acked_path, start, batches);
    wait_until("records acknowledged", Duration::from_secs(60), || acked().len() >= 2_000);
    let snapshots_before = table.snapshots;
    wait_until("a commit of the second phase", Duration::from_secs(60), || {
        read_table(&s3).is_some_and(|t| t.snapshots > snapshots_before + 1)
    });
    daemon.kill();
    producer.wait().unwrap();
    daemon.restart();
    let acked = acked();
    let mut read = None;
    wait_until("every acknowledged record in the table", Duration::from_secs(120), || {
        read = read_table(&s3);
        read.as_ref().is_some_and(|t| acked.iter().all(|n| t.rows.contains_key(n)))
    });
    let table = read.unwrap();
    let duplicates: usize = table.rows.values().map(|(_, count)| count - 1).sum();
    eprintln!(
        "after a SIGKILL: acknowledged {}, {} distinct rows, {duplicates} duplicates, {} snapshots",
        acked.len(),
        table.rows.len(),
        table.snapshots
    );
    assert_eq!(duplicates, 0, "every record is in the table once");
    for (n, (row, _)) in &table.rows {
        // Nothing in the table that was not put, and everything as put (records put but not
        // acknowledged at the kill may be there too).
        let first_phase = *n < 1000 && !unfit.contains(n);
        assert!(first_phase || (*n >= start as i64 && *n < (start + batches * 100) as i64), "{n}");
        assert_eq!(row, &expected_row(*n), "record {n}");
    }
}
