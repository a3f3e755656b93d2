//! The aggregation format against a library nobody here wrote: aws-kinesis-agg 1.2.3 (PyPI),
//! driven through `tests/interop/agg.py`. The test installs it itself
//! (`tests/interop/setup.sh`, into the gitignored `.venv-kpl`; pip needs PyPI once).
//!
//! - records aggregated by aws-kinesis-agg deaggregate here to the same user records;
//! - aggregates encoded here deaggregate there to the same user records, and are byte for
//!   byte what aws-kinesis-agg encodes for the same records;
//! - garbage is judged the same way by both (passed through, partly read, or nothing);
//! - what the producer core sends deaggregates there to what was submitted, in order.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use md5::Digest;
use serde_json::{json, Value};
use sluice_kpl::aggregation::{deaggregate, AggregateBuilder, Deaggregated, MAGIC};
use sluice_kpl::producer::{EntryResult, Output, Producer, ProducerConfig, UserRecord};
use sluice_kpl::types::{HashKey, HashKeyRange, SequenceNumber, ShardId};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python, after installing the pinned requirements once per test process.
fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let status = Command::new(root().join("kpl/tests/interop/setup.sh")).status().expect("run setup.sh");
            assert!(status.success(), "kpl/tests/interop/setup.sh failed: cannot install aws-kinesis-agg");
            root().join(".venv-kpl/bin/python")
        })
        .clone()
}

/// Runs agg.py with `args`, JSON lines in, JSON lines out.
fn agg_py(args: &[&str], lines: &[Value]) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(root().join("kpl/tests/interop/agg.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start agg.py");
    // Feed stdin from another thread: the child's output can fill the pipe before it has
    // read all of its input.
    let mut stdin = child.stdin.take().unwrap();
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("write agg.py's input");
    assert!(output.status.success(), "agg.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    partition_key: String,
    explicit_hash_key: Option<HashKey>,
    data: Bytes,
}

fn user(partition_key: &str, explicit_hash_key: Option<u128>, data: &[u8]) -> User {
    User {
        partition_key: partition_key.to_owned(),
        explicit_hash_key: explicit_hash_key.map(HashKey),
        data: Bytes::copy_from_slice(data),
    }
}

fn to_json(user: &User) -> Value {
    json!({
        "pk": user.partition_key,
        "ehk": user.explicit_hash_key.map(|k| k.to_string()),
        "data": BASE64.encode(&user.data),
    })
}

/// A varied set: repeated and unicode keys, empty and large data, explicit hash keys.
fn sample(with_explicit_hash_keys: bool) -> Vec<User> {
    let mut users = Vec::new();
    for i in 0..600u32 {
        let key = match i % 5 {
            0 => "orders".to_owned(),
            1 => format!("customer-{}", i % 17),
            2 => "ключ-ü-🦀".to_owned(),
            3 => format!("k{i}"),
            _ => "x".repeat(256),
        };
        let size = match i % 7 {
            0 => 0,
            1 => 3_000,
            _ => (i as usize * 13) % 300,
        };
        let data: Vec<u8> = (0..size).map(|j| (i as usize * 31 + j) as u8).collect();
        let explicit_hash_key = (with_explicit_hash_keys && i % 3 == 0).then_some(u128::from(i) << 100 | 7);
        users.push(user(&key, explicit_hash_key, &data));
    }
    users.push(user("max-hash", with_explicit_hash_keys.then_some(u128::MAX), b"top"));
    users
}

fn ours_deaggregated(data: &Bytes) -> Vec<User> {
    match deaggregate(data).unwrap() {
        Deaggregated::Aggregated(records) => records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                assert_eq!(r.sub_sequence_number, i as u64);
                User { partition_key: r.partition_key, explicit_hash_key: r.explicit_hash_key, data: r.data }
            })
            .collect(),
        other => panic!("not an aggregate: {other:?}"),
    }
}

#[test]
fn records_aggregated_by_aws_kinesis_agg_deaggregate_here() {
    for with_explicit_hash_keys in [false, true] {
        let users = sample(with_explicit_hash_keys);
        let lines: Vec<Value> = users.iter().map(to_json).collect();
        let aggregates = agg_py(&["aggregate", "51200"], &lines);
        assert!(aggregates.len() > 5, "several aggregates of 50 KiB");
        let mut out = Vec::new();
        for aggregate in &aggregates {
            let data = Bytes::from(BASE64.decode(aggregate["data"].as_str().unwrap()).unwrap());
            assert!(data.len() <= 51_200);
            let inside = ours_deaggregated(&data);
            assert_eq!(inside.len() as u64, aggregate["count"].as_u64().unwrap());
            // aws-kinesis-agg routes an aggregate by its first user record, as the KPL does.
            assert_eq!(aggregate["pk"].as_str().unwrap(), inside[0].partition_key);
            out.extend(inside);
        }
        assert_eq!(out, users, "same keys, hash keys, data, order");
    }
}

/// Our aggregates of `users`, cut at `max_data_bytes`, as the producer would cut them.
fn our_aggregates(users: &[User], max_data_bytes: usize) -> Vec<(Vec<User>, Bytes)> {
    let mut out = Vec::new();
    let mut builder = AggregateBuilder::new();
    let mut members = Vec::new();
    for user in users {
        let with = builder.data_bytes_with(&user.partition_key, user.explicit_hash_key, user.data.len());
        if !builder.is_empty() && with > max_data_bytes {
            out.push((std::mem::take(&mut members), std::mem::take(&mut builder).finish()));
        }
        builder.push(&user.partition_key, user.explicit_hash_key, user.data.clone());
        members.push(user.clone());
    }
    out.push((members, builder.finish()));
    out
}

#[test]
fn our_aggregates_deaggregate_in_aws_kinesis_agg_and_match_its_bytes() {
    for with_explicit_hash_keys in [false, true] {
        let users = sample(with_explicit_hash_keys);
        let aggregates = our_aggregates(&users, 51_200);
        assert!(aggregates.len() > 5);
        let lines: Vec<Value> = aggregates
            .iter()
            .enumerate()
            .map(|(i, (_, data))| json!({"pk": "a", "ehk": null, "data": BASE64.encode(data), "seq": i.to_string()}))
            .collect();
        let deaggregated = agg_py(&["deaggregate"], &lines);
        let groups: Vec<Value> =
            aggregates.iter().map(|(members, _)| Value::Array(members.iter().map(to_json).collect())).collect();
        let theirs_encoded = agg_py(&["aggregate-each"], &groups);
        assert_eq!(theirs_encoded.len(), aggregates.len());
        let mut theirs = deaggregated.iter();
        for (i, (members, data)) in aggregates.iter().enumerate() {
            let has_table = members.iter().any(|m| m.explicit_hash_key.is_some());
            for (sub, member) in members.iter().enumerate() {
                let record = theirs.next().expect("as many user records as went in");
                assert_eq!(record["seq"], json!(i.to_string()));
                assert_eq!(record["aggregated"], json!(true));
                assert_eq!(record["error"], json!(false));
                assert_eq!(record["sub"], json!(sub));
                assert_eq!(record["pk"].as_str().unwrap(), member.partition_key);
                assert_eq!(BASE64.decode(record["data"].as_str().unwrap()).unwrap(), member.data);
                match member.explicit_hash_key {
                    Some(key) => assert_eq!(record["ehk"], json!(key.to_string())),
                    // aws-kinesis-agg reads an unset index as 0, so a record without an explicit
                    // hash key in an aggregate with a table gets the table's first (its bug;
                    // the KCL checks hasExplicitHashKeyIndex). Only the no-table case is exact.
                    None if !has_table => assert_eq!(record["ehk"], Value::Null),
                    None => {}
                }
            }
            // Byte for byte what aws-kinesis-agg writes for the same records in one aggregate.
            let encoded = BASE64.decode(theirs_encoded[i]["data"].as_str().unwrap()).unwrap();
            assert!(encoded == data[..], "aggregate {i} differs from aws-kinesis-agg's encoding");
        }
        assert!(theirs.next().is_none());
    }
}

/// Data with a correct digest around `protobuf`.
fn wrap(protobuf: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(protobuf);
    out.extend_from_slice(&md5::Md5::digest(protobuf));
    out
}

#[test]
fn garbage_is_judged_as_aws_kinesis_agg_judges_it() {
    let good = our_aggregates(&[user("k", None, b"d"), user("j", None, b"e")], 1 << 20).remove(0).1.to_vec();
    let mut bad_digest = good.clone();
    *bad_digest.last_mut().unwrap() ^= 1;
    let mut flipped_body = good.clone();
    flipped_body[8] ^= 0x10;
    // (name, data, our verdict, aws-kinesis-agg's verdict). Where they differ, this crate does
    // what the KCL's AggregatorUtil does (read in the KCL's source; see aggregation.rs):
    // - protobuf 2 `required` fields: Java's parser refuses a message missing one, so the KCL
    //   passes the record through; Python's protobuf (7.x, upb) does not check them and
    //   aws-kinesis-agg yields a sub-record with an empty field.
    // - an explicit hash key index with an empty table: the KCL's `ehks.get(i)` throws and it
    //   logs an error; aws-kinesis-agg ignores the index.
    // - a field of the wrong wire type: protobuf's own parsers (Python's, Java's) keep it as an
    //   unknown field, read an aggregate of nothing, and the record vanishes; prost refuses the
    //   message and it is passed through whole, so nothing is lost.
    let plain = "plain";
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("plain text", b"just a record".to_vec(), plain, plain),
        ("empty", vec![], plain, plain),
        ("three bytes of magic", MAGIC[..3].to_vec(), plain, plain),
        ("magic and a digest only", wrap(&[]), plain, plain),
        ("good", good.clone(), "2 records, error false", "2 records, error false"),
        ("bad digest", bad_digest, plain, plain),
        ("flipped body", flipped_body, plain, plain),
        ("truncated varint", wrap(&[0x1a, 0x80]), plain, plain),
        ("wrong wire type", wrap(&[0x0d, 0, 0, 0, 0]), plain, "0 records, error false"),
        ("missing required data", wrap(&[0x0a, 0x01, b'k', 0x1a, 0x02, 0x08, 0x00]), plain, "1 records, error false"),
        (
            "missing required index",
            wrap(&[0x0a, 0x01, b'k', 0x1a, 0x03, 0x1a, 0x01, b'd']),
            plain,
            "1 records, error false",
        ),
        (
            "tag without key",
            wrap(&[0x0a, 0x01, b'k', 0x1a, 0x09, 0x08, 0x00, 0x1a, 0x01, b'd', 0x22, 0x02, 0x12, 0x00]),
            plain,
            "1 records, error false",
        ),
        ("keys but no records", wrap(&[0x0a, 0x01, b'k']), "0 records, error false", "0 records, error false"),
        (
            "second record's key index out of range",
            wrap(&[
                0x0a, 0x01, b'k', 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, b'd', 0x1a, 0x05, 0x08, 0x05, 0x1a, 0x01, b'e',
            ]),
            "1 records, error true",
            "1 records, error true",
        ),
        (
            "hash key index without a table",
            wrap(&[0x0a, 0x01, b'k', 0x1a, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x01, b'd']),
            "0 records, error true",
            "1 records, error false",
        ),
        (
            "unknown fields in a record",
            wrap(&[0x0a, 0x01, b'k', 0x1a, 0x09, 0x08, 0x00, 0x1a, 0x01, b'd', 0x28, 0x01, 0x38, 0x02]),
            "1 records, error false",
            "1 records, error false",
        ),
    ];
    let lines: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, data, _, _))| json!({"pk": "p", "ehk": null, "data": BASE64.encode(data), "seq": i.to_string()}))
        .collect();
    let theirs = agg_py(&["deaggregate"], &lines);
    for (i, (name, data, ours_expected, theirs_expected)) in cases.iter().enumerate() {
        let records: Vec<&Value> = theirs.iter().filter(|r| r["seq"] == json!(i.to_string())).collect();
        // Their verdict: passed through whole, N sub-records, or nothing; and whether it logged.
        let their_verdict =
            if records.len() == 1 && records[0]["aggregated"] == json!(false) && records[0].get("empty").is_none() {
                assert_eq!(BASE64.decode(records[0]["data"].as_str().unwrap()).unwrap(), *data, "{name}");
                "plain".to_owned()
            } else if records.len() == 1 && records[0].get("empty").is_some() {
                format!("0 records, error {}", records[0]["error"])
            } else {
                format!("{} records, error {}", records.len(), records[0]["error"])
            };
        let our_verdict = match deaggregate(&Bytes::from(data.clone())) {
            Ok(Deaggregated::Plain(_)) => "plain".to_owned(),
            Ok(Deaggregated::Aggregated(records)) => format!("{} records, error false", records.len()),
            Err(corrupt) => format!("{} records, error true", corrupt.records_before.len()),
        };
        assert_eq!((our_verdict.as_str(), their_verdict.as_str()), (*ours_expected, *theirs_expected), "{name}");
    }
}

#[test]
fn what_the_producer_sends_deaggregates_in_aws_kinesis_agg_as_submitted() {
    let mut producer = Producer::new(ProducerConfig::default(), 5, 0).unwrap();
    producer.update_shard_map(0, [(ShardId(0), HashKeyRange::ALL)]).unwrap();
    // Without explicit hash keys, the partition key alone is the ordering key (and
    // aws-kinesis-agg's explicit hash key reading is unreliable, see above).
    let users = sample(false);
    for (i, u) in users.iter().enumerate() {
        let record = UserRecord {
            partition_key: u.partition_key.clone(),
            explicit_hash_key: u.explicit_hash_key,
            data: u.data.clone(),
        };
        producer.submit(0, record, i as u64).unwrap();
    }
    let mut lines = Vec::new();
    let mut seq = 0u128;
    let mut now = 0;
    while producer.outstanding_records() > 0 {
        now += 10;
        while let Some(output) = producer.poll(now) {
            if let Output::Send(call) = output {
                let mut results = Vec::new();
                for entry in &call.entries {
                    seq += 1;
                    lines.push(json!({"pk": entry.partition_key, "ehk": null, "data": BASE64.encode(&entry.data), "seq": seq.to_string()}));
                    results.push(EntryResult::Ok { shard_id: ShardId(0), sequence_number: SequenceNumber(seq) });
                }
                producer.on_put_records_result(now, call.call_id, Ok(results)).unwrap();
            }
        }
        assert!(now < 100_000, "the producer stalled");
    }
    let theirs = agg_py(&["deaggregate"], &lines);
    assert_eq!(theirs.len(), users.len());
    // Per partition key (the only order a stream keeps), the data in submission order.
    let mut sent: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
    for u in &users {
        sent.entry(u.partition_key.clone()).or_default().push(u.data.to_vec());
    }
    let mut read: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
    for record in &theirs {
        assert_eq!(record["error"], json!(false));
        let data = BASE64.decode(record["data"].as_str().unwrap()).unwrap();
        read.entry(record["pk"].as_str().unwrap().to_owned()).or_default().push(data);
    }
    assert_eq!(read.len(), sent.len());
    for (key, data) in &sent {
        assert!(read.get(key) == Some(data), "records of {key:?} differ or are out of order");
    }
    assert!(producer.metrics().aggregation_ratio() > 10.0, "{}", producer.metrics().aggregation_ratio());
}
