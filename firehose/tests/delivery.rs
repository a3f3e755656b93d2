//! Delivery to a local directory, end to end through the engine: compression read back by the
//! standard tools, buffering by size and interval, AWS's object naming, transformation by a
//! command and by an HTTP endpoint, dynamic partitioning, Parquet read back by pyarrow, S3
//! backup, and the progress contract.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sluice_firehose::transform::Function;
use support::*;

fn s3_destination(extra: serde_json::Value) -> serde_json::Value {
    let mut e = json!({
        "RoleARN": "arn:aws:iam::123456789012:role/firehose",
        "BucketARN": "arn:aws:s3:::out",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900},
    });
    for (k, v) in extra.as_object().expect("object") {
        e[k] = v.clone();
    }
    json!({"DeliveryStreamName": "orders", "ExtendedS3DestinationConfiguration": e})
}

fn lines(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!("{{\"n\":{i},\"customer\":\"c{}\",\"pad\":\"{}\"}}\n", i % 3, "x".repeat((i % 50) as usize))
                .into_bytes()
        })
        .collect()
}

fn records(data: &[Vec<u8>]) -> Vec<sluice_firehose::SourceRecord> {
    data.iter().enumerate().map(|(i, d)| record(i as u64, d.clone())).collect()
}

/// Delivers `n` lines with `compression`, then decompresses every object with `decode` and
/// checks the records come back exactly once, in order within each object.
async fn compression_round_trip(compression: &str, extension: &str, decode: impl Fn(&std::path::Path) -> Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    let data = lines(30_000);
    let (progress, metrics) = deliver_all(
        plan(s3_destination(json!({"CompressionFormat": compression, "Prefix": "p/"})), &env),
        records(&data),
    )
    .await;
    assert_eq!(progress.records_done, data.len() as u64);
    let objects = files(&dir.path().join("out"));
    assert!(objects.len() >= 2, "1 MiB buffers: several objects, got {}", objects.len());
    let mut back = Vec::new();
    for name in objects.keys() {
        assert!(name.ends_with(extension), "{name} ends with {extension}");
        back.extend(decode(&dir.path().join("out").join(name)));
    }
    let mut want: Vec<u8> = data.concat();
    // Objects are listed by name (time + UUID), not delivery order: compare as sorted lines.
    let sort = |v: &mut Vec<u8>| {
        let mut l: Vec<&[u8]> = v.split_inclusive(|b| *b == b'\n').collect();
        l.sort();
        l.concat()
    };
    assert_eq!(sort(&mut back), sort(&mut want));
    assert_eq!(metrics.snapshot(0).iter().find(|(n, _)| *n == "DeliveryToS3.Records").unwrap().1, data.len() as u64);
}

#[tokio::test]
async fn gzip_objects_read_back_with_gzip() {
    compression_round_trip("GZIP", ".gz", |p| run("gzip", &["-dc", p.to_str().unwrap()])).await;
}

#[tokio::test]
async fn zip_objects_read_back_with_unzip() {
    compression_round_trip("ZIP", ".zip", |p| run("unzip", &["-p", p.to_str().unwrap()])).await;
}

#[tokio::test]
async fn snappy_objects_read_back_with_python_snappy() {
    compression_round_trip("Snappy", ".snappy", |p| {
        let script = "import sys, snappy\nsys.stdout.buffer.write(snappy.StreamDecompressor().decompress(open(sys.argv[1], 'rb').read()))";
        let out = std::process::Command::new(python()).args(["-c", script, p.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    })
    .await;
}

/// Hadoop's `BlockCompressorStream` framing, decoded here from its specification: blocks of
/// (u32 BE uncompressed length, then chunks of u32 BE compressed length + raw Snappy bytes until
/// the block's length is reached).
fn hadoop_snappy_decode(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let raw = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        data = &data[4..];
        let mut got = 0;
        while got < raw {
            let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            let block = snap::raw::Decoder::new().decompress_vec(&data[4..4 + len]).unwrap();
            got += block.len();
            out.extend(block);
            data = &data[4 + len..];
        }
        assert_eq!(got, raw, "a block's chunks add up to its length");
    }
    out
}

#[tokio::test]
async fn hadoop_snappy_objects_read_back_by_hadoop_framing_and_python_snappy() {
    compression_round_trip("HADOOP_SNAPPY", ".hsnappy", |p| {
        let bytes = std::fs::read(p).unwrap();
        let ours = hadoop_snappy_decode(&bytes);
        let script = "import sys, snappy\nsys.stdout.buffer.write(snappy.HadoopStreamDecompressor().decompress(open(sys.argv[1], 'rb').read()))";
        let out = std::process::Command::new(python()).args(["-c", script, p.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, ours, "python-snappy's Hadoop decoder agrees");
        ours
    })
    .await;
}

#[tokio::test]
async fn zstd_channel_objects_read_back_with_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    let input: sluice_firehose::channel::CreateChannelInput = serde_json::from_value(json!({
        "ChannelName": "events",
        "ServiceExecutionRoleARN": "arn:aws:iam::123456789012:role/channel",
        "StreamConfigurationList": [{"StreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events", "RecordConfiguration": {"RecordFormatType": "JSON"}}],
        "S3DestinationConfiguration": {"StorageConfiguration": {
            "BucketARN": "arn:aws:s3:::out", "ExpectedBucketOwner": "123456789012",
            "CompressionType": "ZSTD", "OutputKeyTemplate": "events/!{timestamp:yyyy}/"}}
    }))
    .unwrap();
    let plan = sluice_firehose::channel::plan(&input, &env, Some(Duration::from_millis(300))).unwrap();
    let data = lines(2000);
    let mut handle = sluice_firehose::spawn(plan);
    for r in records(&data) {
        handle.records.send(r).await.unwrap();
    }
    // Delivered by data freshness alone, with the source still open.
    let want = data.len() as u64;
    tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done == want))
        .await
        .unwrap()
        .unwrap();
    let objects = files(&dir.path().join("out"));
    let year = chrono::Utc::now().format("%Y").to_string();
    let mut back = Vec::new();
    for name in objects.keys() {
        assert!(name.starts_with(&format!("events/{year}/events-1-")) && name.ends_with(".zst"), "{name}");
        back.extend(run("zstd", &["-dc", dir.path().join("out").join(name).to_str().unwrap()]));
    }
    assert_eq!(back, data.concat());
}

#[tokio::test]
async fn object_names_follow_aws() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    let (_, _) = deliver_all(plan(s3_destination(json!({"Prefix": "logs/"})), &env), records(&lines(10))).await;
    let names: Vec<String> = files(&dir.path().join("out")).into_keys().collect();
    assert_eq!(names.len(), 1);
    let re = regex::Regex::new(
        r"^logs/(\d{4})/(\d{2})/(\d{2})/(\d{2})/orders-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-\d{2}-\d{2}-[0-9a-f-]{36}$",
    )
    .unwrap();
    let c = re.captures(&names[0]).unwrap_or_else(|| panic!("{} has AWS's form", names[0]));
    for i in 1..=4 {
        assert_eq!(c[i], c[i + 4], "the prefix's hour and the name's come from the same record time");
    }
}

#[tokio::test]
async fn buffers_close_on_size_and_on_interval() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    // Interval 1 s: records trickle in, each second's records make one object, and they are
    // reported done while the source stays open.
    let plan = plan(s3_destination(json!({"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}})), &env);
    let mut handle = sluice_firehose::spawn(plan);
    for (i, d) in lines(20).into_iter().enumerate() {
        handle.records.send(record(i as u64, d)).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done == 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(files(&dir.path().join("out")).len(), 1);
    let last = handle.progress.borrow().lanes[&0].clone();
    assert_eq!(index_of(&last), 19);
    // Size: 3.5 MiB through 1 MiB buffers is at least three objects, all before the interval.
    let big: Vec<Vec<u8>> = (0..3584).map(|i| format!("{i:01023}\n").into_bytes()).collect();
    for (i, d) in big.iter().enumerate() {
        handle.records.send(record(20 + i as u64, d.clone())).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done >= 20 + 3 * 1024))
        .await
        .unwrap()
        .unwrap();
    assert!(files(&dir.path().join("out")).len() >= 4);
}

/// With a checkpoint keeper, the engine delivers no buffer while the progress of the one
/// before it is not yet reported durable: here a keeper that stalls until the test says so.
/// A crash at any moment thus finds at most one buffer delivered ahead of the checkpoint.
#[tokio::test]
async fn a_buffer_is_delivered_only_once_the_last_one_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = dir_env(dir.path(), &["out"]);
    let plan = plan(s3_destination(json!({"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900}})), &env);
    let (mut handle, durable) = sluice_firehose::spawn_checkpointed(plan);
    // 3.5 MiB through 1 MiB buffers: three buffers sealed by size, the rest at the end.
    let big: Vec<Vec<u8>> = (0..3584).map(|i| format!("{i:01023}\n").into_bytes()).collect();
    let records = handle.records.clone();
    let feeder = tokio::spawn(async move {
        for (i, d) in big.into_iter().enumerate() {
            records.send(record(i as u64, d)).await.unwrap();
        }
    });
    for delivered in 1..=3 {
        let want = delivered * 1024;
        let progress =
            tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done >= want as u64))
                .await
                .unwrap()
                .unwrap()
                .clone();
        assert_eq!(progress.records_done, want as u64, "one buffer of 1024 records at a time");
        // The next buffers are sealed and being prepared; give them time to be written, which
        // they must not be while the keeper has not written this progress.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(files(&out).len(), delivered, "delivered ahead of the checkpoint");
        assert_eq!(handle.progress.borrow().records_done, want as u64);
        durable.report(&progress);
    }
    feeder.await.unwrap();
    drop(handle.records);
    // The last half buffer, at the end of the source, waits for the third report only.
    tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done == 3584))
        .await
        .unwrap()
        .unwrap();
    (&mut handle.task).await.unwrap();
    let lines: usize = files(&out).values().map(|body| body.split(|b| *b == b'\n').count() - 1).sum();
    assert_eq!(lines, 3584);
    assert_eq!(files(&out).len(), 4);
}

const TRANSFORM_SCRIPT: &str = r#"
import base64, json, sys
request = json.load(sys.stdin)
out = []
for r in request["records"]:
    data = json.loads(base64.b64decode(r["data"]))
    if data["n"] % 5 == 0:
        out.append({"recordId": r["recordId"], "result": "Dropped"})
    elif data["n"] % 7 == 0:
        out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
    else:
        data["upper"] = data["customer"].upper()
        out.append({"recordId": r["recordId"], "result": "Ok",
                    "data": base64.b64encode((json.dumps(data) + "\n").encode()).decode(),
                    "metadata": {"partitionKeys": {"customer": data["customer"]}}})
json.dump({"records": out}, sys.stdout)
"#;

fn check_transformed(out: &std::path::Path, n: u64) {
    let objects = files(out);
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (name, body) in &objects {
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            if name.starts_with("errors/processing-failed/") {
                assert_eq!(v["errorCode"], "Lambda.ProcessingFailedStatus");
                assert!(v["lambdaArn"].as_str().unwrap().ends_with(":function:upper"));
                let raw: serde_json::Value = serde_json::from_slice(
                    &base64::engine::general_purpose::STANDARD.decode(v["rawData"].as_str().unwrap()).unwrap(),
                )
                .unwrap();
                failed.push(raw["n"].as_u64().unwrap());
            } else {
                let customer = v["customer"].as_str().unwrap();
                assert!(name.starts_with(&format!("by-customer/{customer}/")), "{name} is under its partition");
                assert_eq!(v["upper"], customer.to_uppercase());
                ok.push(v["n"].as_u64().unwrap());
            }
        }
    }
    ok.sort();
    failed.sort();
    assert_eq!(ok, (0..n).filter(|i| i % 5 != 0 && i % 7 != 0).collect::<Vec<_>>());
    assert_eq!(failed, (0..n).filter(|i| i % 5 != 0 && i % 7 == 0).collect::<Vec<_>>());
}

fn transform_config() -> serde_json::Value {
    s3_destination(json!({
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
        "Prefix": "by-customer/!{partitionKeyFromLambda:customer}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "DynamicPartitioningConfiguration": {"Enabled": true},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:123456789012:function:upper"},
            {"ParameterName": "BufferSizeInMBs", "ParameterValue": "0.2"}]}]}
    }))
}

#[tokio::test]
async fn transformation_by_command() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("upper.py");
    std::fs::write(&script, format!("#!{}\n{TRANSFORM_SCRIPT}", python().display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut env = dir_env(dir.path(), &["out"]);
    env.functions.insert("upper", Function::Command { argv: vec![script.to_string_lossy().into_owned()] });
    let n = 5000;
    let (progress, metrics) = deliver_all(plan(transform_config(), &env), records(&lines(n))).await;
    assert_eq!(progress.records_done, n);
    check_transformed(&dir.path().join("out"), n);
    let m: BTreeMap<_, _> = metrics.snapshot(0).into_iter().collect();
    assert!(m["ExecuteProcessing.Success.Attempts"] >= 2, "0.2 MiB batches: several invocations");
    assert_eq!(m["DroppedProcessing.Records"], n / 5);
}

#[tokio::test]
async fn transformation_by_http_endpoint_with_a_failing_first_call() {
    // The endpoint runs the same transformation, in Python behind a real HTTP server... here a
    // Rust one: it answers the first invocation with 500 (retried), then transforms.
    let server = HttpServer::start(|captured, n| {
        if n == 0 {
            return Reply::new(500, b"busy".to_vec());
        }
        let request: serde_json::Value = serde_json::from_slice(&captured.body).unwrap();
        let mut out = Vec::new();
        for r in request["records"].as_array().unwrap() {
            let raw = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
            let mut data: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            let i = data["n"].as_u64().unwrap();
            let result = if i.is_multiple_of(5) {
                json!({"recordId": r["recordId"], "result": "Dropped"})
            } else if i.is_multiple_of(7) {
                json!({"recordId": r["recordId"], "result": "ProcessingFailed"})
            } else {
                let customer = data["customer"].as_str().unwrap().to_string();
                data["upper"] = json!(customer.to_uppercase());
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{data}\n"));
                json!({"recordId": r["recordId"], "result": "Ok", "data": encoded, "metadata": {"partitionKeys": {"customer": customer}}})
            };
            out.push(result);
        }
        Reply::new(200, serde_json::to_vec(&json!({"records": out})).unwrap())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = dir_env(dir.path(), &["out"]);
    env.functions.insert("upper", Function::Http { url: server.url.clone() });
    let n = 3000;
    let (progress, _) = deliver_all(plan(transform_config(), &env), records(&lines(n))).await;
    assert_eq!(progress.records_done, n);
    check_transformed(&dir.path().join("out"), n);
    let first: serde_json::Value = serde_json::from_slice(&server.requests.lock().unwrap()[0].body).unwrap();
    assert_eq!(first["deliveryStreamArn"], "arn:aws:firehose:us-east-1:000000000000:deliverystream/orders");
    assert!(first["records"][0]["approximateArrivalTimestamp"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn dynamic_partitioning_with_jq_and_newline_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    let config = s3_destination(json!({
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
        "Prefix": "customer=!{partitionKeyFromQuery:customer}/year=!{partitionKeyFromQuery:year}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/",
        "DynamicPartitioningConfiguration": {"Enabled": true},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .customer, year: .ts | strftime(\"%Y\")}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord"}]}
    }));
    // Records without a trailing newline; two are not JSON and one lacks the key.
    let mut data: Vec<Vec<u8>> = (0..300u64)
        .map(|i| format!("{{\"customer\":\"c{}\",\"ts\":{}}}", i % 3, 1_565_382_027 + i * 86_400 * 200).into_bytes())
        .collect();
    data.push(b"not json".to_vec());
    data.push(br#"{"ts": 1}"#.to_vec());
    data.push(b"{".to_vec());
    let (progress, _) = deliver_all(plan(config, &env), records(&data)).await;
    assert_eq!(progress.records_done, data.len() as u64);
    let objects = files(&dir.path().join("out"));
    let mut delivered = 0;
    let mut failed = 0;
    let re = regex::Regex::new(r"^customer=(c\d)/year=(\d{4})/orders-1-").unwrap();
    for (name, body) in &objects {
        if name.starts_with("errors/partitioning-failed/") {
            failed += body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            continue;
        }
        let c = re.captures(name).unwrap_or_else(|| panic!("{name}"));
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value =
                serde_json::from_slice(line).expect("one record per line: the delimiter was appended");
            assert_eq!(v["customer"], c[1]);
            let year = chrono::DateTime::from_timestamp(v["ts"].as_i64().unwrap(), 0).unwrap().format("%Y").to_string();
            assert_eq!(year, c[2]);
            delivered += 1;
        }
    }
    assert_eq!(delivered, 300);
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn parquet_conversion_read_back_with_pyarrow() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out"]);
    let config = s3_destination(json!({
        "Prefix": "parquet/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
        "DataFormatConversionConfiguration": {
            "Enabled": true,
            "SchemaConfiguration": {"SluiceColumns": [
                {"Name": "n", "Type": "bigint"}, {"Name": "customer", "Type": "string"}, {"Name": "at", "Type": "timestamp"}, {"Name": "ok", "Type": "boolean"}]},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "GZIP"}}}
        }
    }));
    let mut data: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            format!("{{\"n\":{i},\"Customer\":\"c{}\",\"at\":\"2026-01-02T03:04:05Z\",\"ok\":{}}}\n", i % 3, i % 2 == 0)
                .into_bytes()
        })
        .collect();
    data.push(b"{\"n\": \"seven\"}\n".to_vec());
    data.push(b"[1,2]\n".to_vec());
    let (progress, metrics) = deliver_all(plan(config, &env), records(&data)).await;
    assert_eq!(progress.records_done, 1002);
    let objects = files(&dir.path().join("out"));
    let parquet: Vec<&String> = objects.keys().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 1, "{objects:?}");
    let script = r#"
import json, os, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"rows": t.num_rows, "schema": [f"{f.name}:{f.type}" for f in t.schema],
                  "n_sum": sum(t.column("n").to_pylist()), "customers": sorted(set(t.column("customer").to_pylist())),
                  "at": str(t.column("at")[0].as_py()), "ok": sum(1 for v in t.column("ok").to_pylist() if v)}))
# pyarrow's threads can abort the interpreter's teardown (see s3.rs): leave without it.
sys.stdout.flush()
os._exit(0)
"#;
    let out: serde_json::Value =
        serde_json::from_str(&run_python(script, &[dir.path().join("out").join(parquet[0]).to_str().unwrap()]))
            .unwrap();
    assert_eq!(out["rows"], 1000);
    assert_eq!(out["schema"], json!(["n:int64", "customer:string", "at:timestamp[ms, tz=UTC]", "ok:bool"]));
    assert_eq!(out["n_sum"], 999 * 1000 / 2);
    assert_eq!(out["customers"], json!(["c0", "c1", "c2"]));
    assert_eq!(out["at"], "2026-01-02 03:04:05+00:00");
    assert_eq!(out["ok"], 500);
    let errors: Vec<&String> = objects.keys().filter(|k| k.starts_with("errors/format-conversion-failed/")).collect();
    assert_eq!(errors.len(), 1);
    let lines: Vec<serde_json::Value> = objects[errors[0]]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["errorCode"], "DataFormatConversion.MalformedData");
    let snapshot: BTreeMap<_, _> = metrics.snapshot(0).into_iter().collect();
    assert_eq!(snapshot["SucceedConversion.Records"], 1000);
    assert_eq!(snapshot["FailedConversion.Records"], 2);
}

#[tokio::test]
async fn source_records_are_backed_up_before_processing() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["out", "backup"]);
    let config = s3_destination(json!({
        "CompressionFormat": "GZIP",
        "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "fHw="}]}]},
        "S3BackupMode": "Enabled",
        "S3BackupConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::backup", "Prefix": "raw/", "CompressionFormat": "GZIP"}
    }));
    let data: Vec<Vec<u8>> = (0..100).map(|i| format!("r{i}").into_bytes()).collect();
    let (progress, _) = deliver_all(plan(config, &env), records(&data)).await;
    assert_eq!(progress.records_done, 100);
    let main: Vec<u8> = files(&dir.path().join("out")).values().flat_map(|b| gunzip(b)).collect();
    let backup = files(&dir.path().join("backup"));
    assert!(backup.keys().all(|k| k.starts_with("raw/")));
    let raw: Vec<u8> = backup.values().flat_map(|b| gunzip(b)).collect();
    assert_eq!(raw, data.concat(), "the backup holds the source records as they came");
    assert_eq!(
        main,
        data.iter().flat_map(|d| [d.clone(), b"||".to_vec()].concat()).collect::<Vec<u8>>(),
        "the delimiter fHw= is '||'"
    );
}

/// The contract: a record is reported done only after its buffer is durable at the destination.
/// An HTTP endpoint that holds its answer keeps the records in flight; progress must not move
/// until it answers.
#[tokio::test]
async fn progress_waits_for_the_destination() {
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    // Every request is held until the test releases a permit.
    let server = HttpServer::start(move |captured, _| Reply::new(200, endpoint_ok(captured)).gated(gate.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let env = dir_env(dir.path(), &["errors"]);
    let config = json!({"DeliveryStreamName": "hold", "HttpEndpointDestinationConfiguration": {
        "EndpointConfiguration": {"Url": server.url},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::errors"}}});
    let mut handle = sluice_firehose::spawn(plan(config, &env));
    for i in 0..10 {
        handle.records.send(record(i, format!("r{i}"))).await.unwrap();
    }
    // The interval passes and the request is sent, but not answered: nothing is done.
    tokio::time::timeout(Duration::from_secs(30), async {
        while server.requests.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handle.progress.borrow().records_done, 0, "nothing is done while the endpoint has not answered");
    release.add_permits(1);
    tokio::time::timeout(Duration::from_secs(30), handle.progress.wait_for(|p| p.records_done == 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index_of(&handle.progress.borrow().lanes[&0]), 9);
}
