//! The agent against a real `sluiced`: records shipped with PutRecords (native protocol and
//! HTTP), read back from the stream with GetRecords by an independent checker.
//!
//! - `every_line_reaches_sluiced_across_agent_kills` and `…_across_sluiced_kills`: a writer
//!   appends numbered lines while rotating its file both ways; the agent (first test) or
//!   sluiced (second) is SIGKILLed and restarted again and again. Every line written must be
//!   in the stream; in each shard the first occurrences of one file's lines are in file order;
//!   duplicates stay within what was unacknowledged at each kill (the agent's window per agent
//!   kill, one PutRecords call per sluiced kill).
//! - `throttled_entries_are_retried`: a one-shard stream under AWS's quotas (1,000 records/s)
//!   takes a burst of 3,000 lines: entries come back throttled and are retried until all are in.
//! - `http_endpoint_and_a_stream_created_late`: the AWS JSON API over HTTP, to a stream that
//!   does not exist when the agent starts.
//! - `aggregating_flow_ships_kpl_aggregates_through_the_producer`: `aggregatedRecordSizeBytes`
//!   on a stream flow: the KPL producer's aggregates, de-aggregated by the checker.
//! - `delivery_stream_gets_every_line_exactly_once`: a `deliveryStream` flow (PutRecordBatch)
//!   into a delivery stream delivering to a local directory, read back from the objects.
//! - `throttled_delivery_stream_records_are_retried`: `ServiceUnavailableException` per record
//!   under `--limits kinesis`, retried until every line is in once.
//! - `delivery_streams_need_an_http_firehose_endpoint`.
//!
//! `SLUICE_AGENT_KILL_SECONDS` (default 10) sets how long the writers run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    agent_bin, create_stream, delivered_lines, read_stream, signal, wait_for, writer_bin, Forwarder, Scene, Sluiced,
};
use rand::Rng;

/// The window of records in flight the agent runs with in the kill tests: each agent kill may
/// re-send at most this many records.
const WINDOW: usize = 500;
/// Records per PutRecords in the kill tests: each sluiced kill may re-send at most one call.
const CALL_RECORDS: usize = 100;

fn stream_scene(pattern: &str, endpoint: &str, extra: &str) -> Scene {
    let scene = Scene::new(pattern, extra);
    // Scene writes a one-flow configuration; add the endpoint at the top level.
    let text = std::fs::read_to_string(&scene.config).unwrap();
    let text = text.replacen('{', &format!("{{\"kinesis.endpoint\": {endpoint:?}, "), 1);
    std::fs::write(&scene.config, text).unwrap();
    scene
}

/// An agent process, SIGKILLed when dropped (a failing test leaves none behind).
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(scene: &Scene, extra_args: &[&str]) -> Agent {
    Agent(
        Command::new(agent_bin())
            .arg("--config")
            .arg(&scene.config)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sluice-agent"),
    )
}

/// `--once` with the stream sink; returns its stderr.
fn once(scene: &Scene) -> String {
    let output = Command::new(agent_bin())
        .arg("--config")
        .arg(&scene.config)
        .arg("--once")
        .output()
        .expect("run sluice-agent --once");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "sluice-agent --once failed: {stderr}");
    stderr
}

/// `g=GEN s=SEQ pad\n` of the rotating writer.
fn parse(record: &[u8]) -> (u64, u64) {
    let text = std::str::from_utf8(record).expect("UTF-8 record");
    let mut fields = text.split(' ');
    let field = |f: Option<&str>, prefix: &str| -> u64 {
        f.and_then(|f| f.strip_prefix(prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad record {text:?}"))
    };
    let generation = field(fields.next(), "g=");
    let seq = field(fields.next(), "s=");
    assert_eq!(text, format!("g={generation} s={seq} {}\n", "x".repeat(40)), "torn record");
    (generation, seq)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Victim {
    Agent,
    Sluiced,
}

fn kill_cycles(victim: Victim) {
    let seconds: u64 = std::env::var("SLUICE_AGENT_KILL_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let mut sluiced = Sluiced::start(dir.path(), "unlimited");
    create_stream(sluiced.native, "s", 2);
    let forwarder = Forwarder::start(sluiced.native);
    // Random keys re-sent after an agent kill go to other shards than the first time;
    // deterministic ones (MD5 of the line) to the same shard. Both are checked.
    let keys = match victim {
        Victim::Agent => "RANDOM",
        Victim::Sluiced => "DETERMINISTIC",
    };
    let scene = stream_scene(
        "app.log*",
        &format!("sluice://{}", forwarder.addr),
        &format!(
            r#""initialPosition": "START_OF_FILE", "partitionKeyOption": "{keys}", "maxBufferSizeRecords": {CALL_RECORDS}, "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 500"#
        ),
    );
    let rate = 2000;
    let writer = Command::new(writer_bin())
        .arg(&scene.logs)
        .args(["app.log", &rate.to_string(), "1500", &(seconds * 1000).to_string(), "4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");

    let window = WINDOW.to_string();
    let agent_args = ["--window-records", window.as_str()];
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let mut agent_kills = 0;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut agent = start_agent(&scene, &agent_args);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        match victim {
            Victim::Agent => {
                drop(agent);
                agent_kills += 1;
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
                agent = start_agent(&scene, &agent_args);
            }
            Victim::Sluiced => {
                sluiced.kill();
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..500)));
                sluiced.spawn();
                forwarder.point_to(sluiced.native);
            }
        }
        kills += 1;
    }
    let written = writer.wait_with_output().expect("the writer finishes");
    assert!(written.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&written.stdout).expect("writer summary");
    let lines = summary["lines"].as_u64().unwrap();
    // Kill the running agent once more, then one --once run ships the rest (rotations finish
    // after their idle time) and exits.
    drop(agent);
    agent_kills += 1;
    once(&scene);

    // The checker: everything in the stream, per shard in sequence order. In each shard, the
    // first occurrences of one file's lines are in file order. (Shards have no order between
    // them: a line re-sent with a random key after a kill can land in another shard, before or
    // after its first copy; such lines, in more than one shard, are duplicates and are left
    // out of the order check. Deterministic keys re-send into the same shard.)
    let records = read_stream(sluiced.native, "s");
    let mut count: BTreeMap<u64, u32> = BTreeMap::new();
    let mut newest: HashMap<(String, u64), u64> = HashMap::new();
    let mut shards_of: HashMap<u64, std::collections::HashSet<String>> = HashMap::new();
    for (shard, data) in &records {
        shards_of.entry(parse(data).1).or_default().insert(shard.clone());
    }
    let mut seen_in_shard: std::collections::HashSet<(String, u64)> = std::collections::HashSet::new();
    for (shard, data) in &records {
        let (generation, seq) = parse(data);
        assert!(seq < lines, "a line never written: {seq}");
        *count.entry(seq).or_insert(0) += 1;
        if seen_in_shard.insert((shard.clone(), seq)) && shards_of[&seq].len() == 1 {
            // A first occurrence: after every earlier line of its file in this shard.
            if let Some(&previous) = newest.get(&(shard.clone(), generation)) {
                assert!(
                    seq > previous,
                    "{shard}: line {seq} of file generation {generation} arrived first after line {previous}"
                );
            }
            newest.insert((shard.clone(), generation), seq);
        }
    }
    let missing: Vec<u64> = (0..lines).filter(|s| !count.contains_key(s)).take(10).collect();
    assert!(missing.is_empty(), "lines lost (first few of {}): {missing:?}", lines as usize - count.len());
    let duplicates: u64 = count.values().map(|&c| u64::from(c - 1)).sum();
    let sluiced_kills = kills - if victim == Victim::Agent { kills } else { 0 };
    let bound = (agent_kills * WINDOW + sluiced_kills * CALL_RECORDS) as u64;
    assert!(duplicates <= bound, "{duplicates} duplicates after {kills} kills of {victim:?}: more than {bound}");
    eprintln!(
        "stream kill cycles ({victim:?}): {lines} lines, {kills} SIGKILLs, {} records in the stream, 0 lost, {duplicates} duplicates (bound {bound})",
        records.len()
    );
}

#[test]
fn every_line_reaches_sluiced_across_agent_kills() {
    kill_cycles(Victim::Agent);
}

#[test]
fn every_line_reaches_sluiced_across_sluiced_kills() {
    kill_cycles(Victim::Sluiced);
}

#[test]
fn throttled_entries_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let sluiced = Sluiced::start(dir.path(), "kinesis");
    create_stream(sluiced.native, "s", 1);
    let scene = stream_scene(
        "burst.log",
        &sluiced.native_endpoint(),
        r#""initialPosition": "START_OF_FILE", "retryInitialBackoffMillis": 100, "retryMaxBackoffMillis": 400"#,
    );
    let lines = 3000;
    let text: String = (0..lines).map(|i| format!("line {i:06} {}\n", "y".repeat(80))).collect();
    std::fs::write(scene.log("burst.log"), text).unwrap();
    once(&scene);
    let records = read_stream(sluiced.native, "s");
    let mut seen = vec![0u32; lines];
    for (_, data) in &records {
        let text = std::str::from_utf8(data).unwrap();
        let i: usize = text[5..11].parse().unwrap();
        seen[i] += 1;
    }
    assert!(seen.iter().all(|&c| c == 1), "every line exactly once (throttled entries are never written)");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.status", scene.checkpoint.display())).expect("status file"))
            .unwrap();
    let flow = &status["flows"][0];
    assert!(flow["throttles"].as_u64().unwrap() > 0, "a burst over 1,000 records/s is throttled: {flow}");
    assert_eq!(flow["recordsSent"].as_u64().unwrap(), lines as u64, "{flow}");
}

#[test]
fn http_endpoint_and_a_stream_created_late() {
    let dir = tempfile::tempdir().unwrap();
    let sluiced = Sluiced::start(dir.path(), "unlimited");
    let scene = stream_scene(
        "late.log",
        &sluiced.http_endpoint(),
        r#""initialPosition": "START_OF_FILE", "partitionKeyOption": "DETERMINISTIC", "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 200"#,
    );
    std::fs::write(scene.log("late.log"), "one\ntwo\nthree\n").unwrap();
    let mut agent = Agent(
        Command::new(agent_bin())
            .arg("--config")
            .arg(&scene.config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The agent logs the missing stream (once a minute) and holds the records.
    let stderr = agent.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines().map_while(Result::ok);
        let found = lines.by_ref().any(|line| line.contains("stream does not exist (yet)"));
        let rest: Vec<String> = lines.collect();
        (found, rest)
    });
    // maxBufferAgeMillis is 1 s: the first call goes out after it, to a missing stream.
    std::thread::sleep(Duration::from_millis(1500));
    create_stream(sluiced.native, "s", 1);
    let records = wait_for("three records", || {
        let records = read_stream(sluiced.native, "s");
        (records.len() >= 3).then_some(records)
    });
    let data: Vec<&[u8]> = records.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(data, [&b"one\n"[..], b"two\n", b"three\n"]);
    signal(&agent.0, libc::SIGTERM);
    assert!(agent.0.wait().unwrap().success(), "SIGTERM: a clean stop");
    let (found, _) = log.join().unwrap();
    assert!(found, "the missing stream is logged");
}

/// Every user record of a stream, KPL aggregates split as a consumer (the KCL) does:
/// (Kinesis records read, user records' data).
fn read_deaggregated(native: std::net::SocketAddr, name: &str) -> (usize, usize, Vec<Vec<u8>>) {
    use sluice_kpl::aggregation::{deaggregate, Deaggregated};
    let records = read_stream(native, name);
    let mut aggregates = 0;
    let mut user_records = Vec::new();
    for (_, data) in &records {
        match deaggregate(&bytes::Bytes::from(data.clone())).expect("an authentic aggregate reads whole") {
            Deaggregated::Aggregated(subs) => {
                aggregates += 1;
                user_records.extend(subs.into_iter().map(|sub| sub.data.to_vec()));
            }
            Deaggregated::Plain(_) => user_records.push(data.clone()),
        }
    }
    (records.len(), aggregates, user_records)
}

/// A stream flow with `aggregatedRecordSizeBytes`: shipped through sluice-client's KPL
/// producer into a stream that does not exist when the agent starts (the producer's start is
/// retried), read back and de-aggregated: every line exactly once, in far fewer Kinesis
/// records than lines.
#[test]
fn aggregating_flow_ships_kpl_aggregates_through_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let sluiced = Sluiced::start(dir.path(), "unlimited");
    let scene = stream_scene(
        "agg.log",
        &sluiced.native_endpoint(),
        r#""initialPosition": "START_OF_FILE", "aggregatedRecordSizeBytes": 4096, "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 300"#,
    );
    let lines = 5000;
    let text: String = (0..lines).map(|i| format!("line {i:06} {}\n", "z".repeat(60))).collect();
    std::fs::write(scene.log("agg.log"), text).unwrap();
    let mut agent = start_agent(&scene, &[]);
    std::thread::sleep(Duration::from_millis(700));
    create_stream(sluiced.native, "s", 2);
    let (kinesis_records, aggregates, user_records) = wait_for("every line in the stream", || {
        let read = read_deaggregated(sluiced.native, "s");
        (read.2.len() >= lines).then_some(read)
    });
    signal(&agent.0, libc::SIGTERM);
    assert!(agent.0.wait().unwrap().success(), "SIGTERM: a clean stop");
    let mut seen = vec![0u32; lines];
    for data in &user_records {
        let text = std::str::from_utf8(data).unwrap();
        assert_eq!(text.len(), 73, "whole lines: {text:?}");
        seen[text[5..11].parse::<usize>().unwrap()] += 1;
    }
    assert!(seen.iter().all(|&c| c == 1), "every line exactly once");
    // 5,000 lines of 73 bytes in aggregates of at most 4 KiB of data: ~90 Kinesis records.
    assert!(
        aggregates > 0 && kinesis_records * 10 < lines,
        "{kinesis_records} Kinesis records, {aggregates} aggregates"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.status", scene.checkpoint.display())).unwrap()).unwrap();
    assert_eq!(status["flows"][0]["recordsSent"].as_u64(), Some(lines as u64), "{status}");
    assert!(status["sink"].as_str().unwrap().contains("KPL producer"), "{status}");
}

/// One Firehose call over HTTP/1.1 to sluiced's HTTP port (a test's own client, independent
/// of the agent's); returns the status and the body.
fn firehose_call(http: std::net::SocketAddr, operation: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(http).expect("connect to the HTTP port");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Firehose_20150804.{operation}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad answer {answer:?}"));
    (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// A sluiced (`limits`) with a delivery stream `logs` delivering every second to a
/// local-directory bucket, and a scene whose one flow (`pattern`, `extra` keys) ships to it
/// over `firehose.endpoint`. Returns them with the directory the objects land in.
fn delivery_scene(
    dir: &std::path::Path,
    limits: &'static str,
    pattern: &str,
    extra: &str,
) -> (Sluiced, Scene, std::path::PathBuf) {
    let delivered = dir.join("delivered");
    let firehose_config = dir.join("firehose.toml");
    std::fs::write(&firehose_config, format!("[buckets.files]\ndir = {:?}\n", delivered.display().to_string()))
        .unwrap();
    let sluiced = Sluiced::start_with(dir, limits, &["--firehose-config", firehose_config.to_str().unwrap()]);
    let (status, body) = firehose_call(
        sluiced.http,
        "CreateDeliveryStream",
        r#"{"DeliveryStreamName": "logs", "S3DestinationConfiguration": {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}}"#,
    );
    assert_eq!(status, 200, "CreateDeliveryStream: {body}");
    let scene = Scene::new(pattern, extra);
    let text = std::fs::read_to_string(&scene.config)
        .unwrap()
        .replace(r#""kinesisStream": "s""#, r#""deliveryStream": "logs""#);
    let text = text.replacen('{', &format!("{{\"firehose.endpoint\": \"http://{}\", ", sluiced.http), 1);
    std::fs::write(&scene.config, text).unwrap();
    (sluiced, scene, delivered)
}

/// A `deliveryStream` flow into a real sluiced's delivery stream (PutRecordBatch on its HTTP
/// port, lines aggregated into Firehose records of up to 1,000 bytes as
/// `aggregatedRecordSizeBytes` asks), delivered to a local-directory bucket and read back from
/// the delivered objects:
/// every line the rotating writer wrote (both rotation kinds) arrives exactly once. The agent
/// is stopped with SIGTERM halfway (a clean stop acknowledges what it sent, so no duplicates)
/// and restarted.
#[test]
fn delivery_stream_gets_every_line_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluiced, scene, delivered) = delivery_scene(
        dir.path(),
        "unlimited",
        "app.log*",
        // Firehose records of up to 1,000 bytes: about 20 lines each (the AWS agent's aggregation).
        r#""initialPosition": "START_OF_FILE", "maxBufferSizeRecords": 100, "aggregatedRecordSizeBytes": 1000, "retryInitialBackoffMillis": 50, "retryMaxBackoffMillis": 500"#,
    );
    let writer = Command::new(writer_bin())
        .arg(&scene.logs)
        .args(["app.log", "2000", "1000", "3000", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut agent = start_agent(&scene, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&agent.0, libc::SIGTERM);
    assert!(agent.0.wait().unwrap().success(), "SIGTERM: a clean stop");
    let mut agent = start_agent(&scene, &[]);
    let written = writer.wait_with_output().expect("the writer finishes");
    assert!(written.status.success());
    let lines = serde_json::from_slice::<serde_json::Value>(&written.stdout).expect("writer summary")["lines"]
        .as_u64()
        .unwrap();
    signal(&agent.0, libc::SIGTERM);
    assert!(agent.0.wait().unwrap().success(), "SIGTERM: a clean stop");
    // The rest (rotations finish after their idle time) with --once.
    once(&scene);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.status", scene.checkpoint.display())).unwrap()).unwrap();
    assert_eq!(status["flows"][0]["recordsFailed"].as_u64(), Some(0), "{status}");

    // sluiced delivers its buffer every second; wait for every line, then check the counts.
    wait_for("every line delivered", || (delivered_lines(&delivered).len() as u64 >= lines).then_some(()));
    // A duplicate would be delivered with the same buffer interval: give it one more.
    std::thread::sleep(Duration::from_millis(1500));
    let found = delivered_lines(&delivered);
    let mut seen = vec![0u32; lines as usize];
    for (line, count) in &found {
        let (_, seq) = parse(format!("{line}\n").as_bytes());
        assert!(seq < lines, "a line never written: {line:?}");
        seen[seq as usize] += count;
    }
    let wrong: Vec<(usize, u32)> = seen.iter().copied().enumerate().filter(|&(_, c)| c != 1).take(10).collect();
    assert!(wrong.is_empty(), "every line exactly once; (line, copies) not: {wrong:?}");
    eprintln!("delivery stream: {lines} lines written, each delivered exactly once");
}

/// A burst of 6,000 lines into a delivery stream under AWS's quotas (`--limits kinesis`: its
/// hidden stream's 2 shards take 2,000 records/s): records come back
/// `ServiceUnavailableException` and are retried until all are in, each delivered once.
#[test]
fn throttled_delivery_stream_records_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluiced, scene, delivered) = delivery_scene(
        dir.path(),
        "kinesis",
        "burst.log",
        r#""initialPosition": "START_OF_FILE", "retryInitialBackoffMillis": 100, "retryMaxBackoffMillis": 400"#,
    );
    let lines = 6000;
    let text: String = (0..lines).map(|i| format!("line {i:06} {}\n", "y".repeat(80))).collect();
    std::fs::write(scene.log("burst.log"), text).unwrap();
    once(&scene);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.status", scene.checkpoint.display())).unwrap()).unwrap();
    let flow = &status["flows"][0];
    assert!(flow["throttles"].as_u64().unwrap() > 0, "a burst over 2,000 records/s is throttled: {flow}");
    assert_eq!(flow["recordsSent"].as_u64(), Some(lines as u64), "{flow}");
    wait_for("every line delivered", || (delivered_lines(&delivered).len() >= lines).then_some(()));
    std::thread::sleep(Duration::from_millis(1500));
    let mut seen = vec![0u32; lines];
    for (line, count) in delivered_lines(&delivered) {
        seen[line[5..11].parse::<usize>().unwrap()] += count;
    }
    assert!(seen.iter().all(|&c| c == 1), "every line exactly once (throttled records are never written)");
}

#[test]
fn delivery_streams_need_an_http_firehose_endpoint() {
    let scene = stream_scene("app.log", "sluice://127.0.0.1:4568", "");
    let text = std::fs::read_to_string(&scene.config).unwrap().replace("kinesisStream", "deliveryStream");
    std::fs::write(&scene.config, text).unwrap();
    // A kinesis.endpoint on sluiced's native port, which does not carry Firehose.
    let output = Command::new(agent_bin()).arg("--config").arg(&scene.config).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("firehose.endpoint") && stderr.contains("HTTP only"), "{stderr}");
    assert!(!scene.checkpoint.exists(), "nothing ran");
    let check = Command::new(agent_bin()).arg("--config").arg(&scene.config).arg("check-config").output().unwrap();
    assert!(!check.status.success(), "check-config says so too");
    // The file sink takes delivery streams without an endpoint (for debugging a configuration).
    let file = Command::new(agent_bin())
        .arg("--config")
        .arg(&scene.config)
        .arg("--sink-file")
        .arg(&scene.out)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(file.status.success(), "{}", String::from_utf8_lossy(&file.stderr));
}
