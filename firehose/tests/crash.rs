//! The delivery contract under SIGKILL: `sluice-firehose deliver` (the engine with a file
//! source and a durable checkpoint of the reported position) is killed mid-buffer again and
//! again and restarted from its checkpoint; an independent check then reads every delivered
//! object and finds every record at least once, with duplicates bounded by one buffer per
//! crash: the engine delivers one buffer at a time, each once the checkpoint of the one before
//! it is durable (see `sluice_firehose::engine`).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use support::*;

const RECORDS: usize = 60_000;
const BUFFER_BYTES: usize = 1 << 20;
const KILLS_MAX: usize = 6;

#[test]
fn sigkill_during_delivery_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.ndjson");
    let mut f = std::fs::File::create(&input).unwrap();
    // The shortest record gives the most records per buffer: the safe bound below.
    let mut record_bytes = usize::MAX;
    for i in 0..RECORDS {
        let line = format!("{{\"id\":{i},\"payload\":\"{}\"}}\n", "abcdefghij".repeat(18));
        record_bytes = record_bytes.min(line.len());
        f.write_all(line.as_bytes()).unwrap();
    }
    drop(f);
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&serde_json::json!({"DeliveryStreamName": "crashy", "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::out",
            "CompressionFormat": "GZIP", "Prefix": "c/",
            "BufferingHints": {"SizeInMBs": BUFFER_BYTES >> 20, "IntervalInSeconds": 1}}}))
        .unwrap(),
    )
    .unwrap();
    let checkpoint = dir.path().join("checkpoint");
    let out = dir.path().join("out");
    let bin = env!("CARGO_BIN_EXE_sluice-firehose");
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let started = Instant::now();
    loop {
        let before = std::fs::read_to_string(&checkpoint).unwrap_or_default();
        let mut child = Command::new(bin)
            .args([
                "deliver",
                "--config",
                config.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--checkpoint",
                checkpoint.to_str().unwrap(),
            ])
            .arg("--bucket")
            .arg(format!("out={}", out.display()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        if kills == KILLS_MAX {
            let status = child.wait().unwrap();
            assert!(status.success(), "the last run finishes: {status}");
            break;
        }
        // Kill once this run has made progress (so each crash lands mid-delivery), after a
        // random extra moment.
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::fs::read_to_string(&checkpoint).unwrap_or_default() != before {
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
                break None;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "the crash loop takes too long");
            std::thread::sleep(Duration::from_millis(5));
        };
        match exited {
            Some(status) => {
                assert!(status.success(), "{status}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    // The independent check: every object, decompressed, every record counted.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (name, body) in files(&out) {
        assert!(name.starts_with("c/") && name.ends_with(".gz"), "{name}");
        for line in String::from_utf8(gunzip(&body)).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            *seen.entry(v["id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    let missing: Vec<u64> = (0..RECORDS as u64).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "{} records lost, first {:?}", missing.len(), &missing[..missing.len().min(10)]);
    assert_eq!(seen.len(), RECORDS);
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    let buffer_records = BUFFER_BYTES / record_bytes + 1;
    let bound = kills * buffer_records;
    println!("crash test: {kills} SIGKILLs, {duplicates} duplicate records (bound {bound}: one buffer of {buffer_records} per crash)");
    assert!(kills >= 1, "at least one crash landed mid-delivery");
    assert!(duplicates <= bound, "{duplicates} duplicates exceed the bound {bound}");
    let final_offset: u64 = std::fs::read_to_string(&checkpoint).unwrap().trim().parse().unwrap();
    assert_eq!(final_offset, std::fs::metadata(&input).unwrap().len(), "the checkpoint reached the end");
}
