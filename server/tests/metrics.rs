//! The metrics port against real parts: a real `sluiced` under load, scraped every second by
//! the real Prometheus server (Debian's, installed by `tests/metrics/setup.sh`), checked with
//! PromQL against what the client saw; the dashboard's every query and the alert rules
//! evaluated by that Prometheus; the systemd unit and the example configuration checked by
//! `systemd-analyze verify` and `sluiced --check-config`.

mod common;

use bytes::Bytes;
use common::{free_port, http_get as get, run, Daemon};
use sluice_client::*;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The Prometheus server, scraping one `sluiced` every second, with the alert rules loaded.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let setup = Command::new("bash").arg(repo().join("tests/metrics/setup.sh")).status().expect("run setup.sh");
        assert!(setup.success(), "tests/metrics/setup.sh could not install Prometheus");
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let config = dir.path().join("prometheus.yml");
        let rules = repo().join("deploy/prometheus/alerts.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\n\
                 scrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn prometheus");
        let prometheus = Prometheus { child, addr, _dir: dir };
        prometheus
            .wait_until("Prometheus is ready", || TcpStream::connect(addr).is_ok() && get(addr, "/-/ready").0 == 200);
        prometheus
    }

    /// Polls `done` until it holds; fails after a minute (a hang, not a speed check).
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An instant query's result vector; panics if Prometheus refuses the query.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let (status, body) = get(self.addr, &format!("/api/v1/query?query={}", percent_encode(promql)));
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{promql}: {body}"));
        assert_eq!((status, answer["status"].as_str()), (200, Some("success")), "{promql}: {body}");
        match &answer["data"]["result"] {
            serde_json::Value::Array(samples) => samples.clone(),
            // Scalars (`scalar(...)`, literals) answer one sample.
            other => vec![other.clone()],
        }
    }

    /// The value of a query that yields one sample, or `None` if it yields none.
    fn value(&self, promql: &str) -> Option<f64> {
        let samples = self.query(promql);
        assert!(samples.len() <= 1, "{promql} has {} samples", samples.len());
        samples.first().map(|sample| sample["value"][1].as_str().unwrap().parse().unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the client saw of its writes.
#[derive(Debug, Default)]
struct Sent {
    stored: u64,
    throttled: u64,
    failed: u64,
}

#[test]
fn prometheus_sees_what_the_client_sent_and_the_dashboard_and_alerts_evaluate() {
    let daemon = Daemon::start("kinesis", 2);
    assert_eq!(get(daemon.metrics_addr, "/health/live").0, 200);
    assert_eq!(get(daemon.metrics_addr, "/nothing").0, 404);
    let prometheus = Prometheus::start(daemon.metrics_addr);
    // Ready a moment after the listeners accept (once every core reported and the addresses
    // were verified); 503 until then.
    prometheus.wait_until("sluiced is ready", || match get(daemon.metrics_addr, "/health/ready").0 {
        200 => true,
        503 => false,
        other => panic!("/health/ready answered {other}"),
    });
    // Prometheus applies its targets a few seconds after it starts: load only once it scrapes.
    prometheus.wait_until("Prometheus scrapes sluiced", || prometheus.value(r#"up{job="sluice"}"#) == Some(1.0));

    let endpoint = daemon.endpoint();
    let (sender, sent) = std::sync::mpsc::channel();
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        for (stream, shards) in [("metered", 2), ("quiet", 1)] {
            let request =
                CreateStreamInput { stream_name: stream.into(), shard_count: Some(shards), ..Default::default() };
            client.call(&request).await.expect("create stream");
        }
        let enable = EnableEnhancedMonitoringInput {
            stream_name: Some("metered".into()),
            shard_level_metrics: vec![MetricsName::IncomingRecords, MetricsName::WriteProvisionedThroughputExceeded],
            ..Default::default()
        };
        client.call(&enable).await.expect("enable enhanced monitoring");
        // Two shards take 2,000 records/s: 500-record batches of 1 KiB as fast as the client
        // goes overrun that, so some records are stored and some throttled.
        let mut seen = Sent::default();
        let started = Instant::now();
        let mut batch = 0;
        while started.elapsed() < Duration::from_secs(3) || batch < 4 {
            let records = (0..500)
                .map(|i| PutRecordsRequestEntry {
                    data: Bytes::from(vec![b'x'; 1024]),
                    partition_key: Some(format!("key-{batch}-{i}")),
                    explicit_hash_key: None,
                })
                .collect();
            let request = PutRecordsInput { stream_name: Some("metered".into()), records, ..Default::default() };
            let response = client.call(&request).await.expect("put records");
            for record in response.records {
                match record.error_code {
                    None => seen.stored += 1,
                    Some(ErrorKind::ProvisionedThroughputExceeded) => seen.throttled += 1,
                    Some(_) => seen.failed += 1,
                }
            }
            batch += 1;
        }
        sender.send(seen).unwrap();
    });
    let sent = sent.recv().unwrap();
    assert!(sent.stored > 0 && sent.throttled > 0, "the load both stored and was throttled: {sent:?}");

    let stored = sent.stored as f64;
    // Each core's counters reach a scrape in their own snapshot, so one family can show its
    // final count a scrape before another does (CI once saw the throttled records 428 short
    // while the incoming ones were final): wait until every family checked below is final.
    prometheus.wait_until("Prometheus scraped the final counts", || {
        prometheus.value(r#"sluice_incoming_records_total{stream="metered"}"#) == Some(stored)
            && prometheus.value(r#"sluice_put_records_throttled_records_total{stream="metered"}"#)
                == Some(sent.throttled as f64)
            && prometheus.value(r#"sluice_write_provisioned_throughput_exceeded_total{stream="metered"}"#)
                == Some(sent.throttled as f64)
            && prometheus.value(r#"sluice_put_records_successful_records_total{stream="metered"}"#) == Some(stored)
    });
    // Scraped while the load ran, not only at its end.
    let samples = prometheus.value(r#"count_over_time(sluice_incoming_records_total{stream="metered"}[5m])"#).unwrap();
    let scrapes = (
        prometheus.value("count_over_time(up[5m])"),
        prometheus.value("sum_over_time(up[5m])"),
        prometheus.value("max_over_time(scrape_duration_seconds[5m])"),
    );
    assert!(samples >= 2.0, "{samples} scrapes of the counter; scrapes, successful, slowest: {scrapes:?}");
    let incoming = prometheus.value(r#"sum(sluice_incoming_records_total{stream="metered"})"#).unwrap();
    assert!((incoming - stored).abs() <= 0.01 * stored, "IncomingRecords {incoming}, the client stored {stored}");
    let check = |promql: &str, expected: u64| {
        assert_eq!(prometheus.value(promql), Some(expected as f64), "{promql}: the client saw {sent:?}");
    };
    check(r#"sluice_write_provisioned_throughput_exceeded_total{stream="metered"}"#, sent.throttled);
    check(r#"sluice_put_records_throttled_records_total{stream="metered"}"#, sent.throttled);
    check(r#"sluice_put_records_successful_records_total{stream="metered"}"#, sent.stored);
    check(r#"sluice_put_records_failed_records_total{stream="metered"}"#, sent.failed);
    check(r#"sluice_put_records_total_records_total{stream="metered"}"#, sent.stored + sent.throttled + sent.failed);
    check(
        r#"sluice_incoming_bytes_total{stream="metered"} / 1024 >= bool sluice_incoming_records_total{stream="metered"}"#,
        1,
    );
    // Shard level: exactly the enabled names, for the enabled stream, one series per shard.
    check(r#"count(sluice_shard_incoming_records_total{stream="metered"})"#, 2);
    check(r#"sum(sluice_shard_incoming_records_total{stream="metered"})"#, sent.stored);
    check(r#"sum(sluice_shard_write_provisioned_throughput_exceeded_total{stream="metered"})"#, sent.throttled);
    assert_eq!(prometheus.value("count(sluice_shard_incoming_bytes_total)"), None, "IncomingBytes was not enabled");
    assert_eq!(prometheus.value(r#"count(sluice_shard_incoming_records_total{stream="quiet"})"#), None);
    check(r#"sluice_incoming_records_total{stream="quiet"}"#, 0);
    check(r#"sum(sluice_group_commit_records_count) > bool 0"#, 1);
    // Buckets as Prometheus reads them: the +Inf one counts every commit, once.
    check(r#"sum(sluice_group_commit_records_bucket{le="+Inf"}) == bool sum(sluice_group_commit_records_count)"#, 1);
    check("sluice_ready", 1);

    // The dashboard's every query evaluates (Grafana's variables given values Prometheus reads).
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/sluice-dashboard.json")).unwrap())
            .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$stream", ".*").replace("$__rate_interval", "1m");
            let samples = prometheus.query(&expr);
            let title = panel["title"].as_str().unwrap();
            // Every panel but those of features this load did not use shows data.
            let idle = [
                "Read throttles",
                "Iterator age",
                "Enhanced fan-out",
                "GetRecords",
                "Reshards",
                "Subscriptions",
                "Tail-cache",
                "Retention",
            ];
            if !idle.iter().any(|word| title.contains(word)) {
                assert!(!samples.is_empty(), "dashboard panel {title:?} shows nothing: {expr}");
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "{queries} dashboard queries");

    // The alert rules loaded and evaluate without error.
    prometheus.wait_until("the alert rules were evaluated", || {
        let (_, body) = get(prometheus.addr, "/api/v1/rules");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rules: Vec<_> = answer["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["rules"].as_array().unwrap().clone())
            .collect();
        for rule in &rules {
            assert_ne!(rule["health"], "err", "alert rule {} fails: {}", rule["name"], rule["lastError"]);
        }
        rules.len() >= 9 && rules.iter().all(|rule| rule["health"] == "ok")
    });
}

#[test]
fn deploy_files_check() {
    let setup = Command::new("bash").arg(repo().join("tests/metrics/setup.sh")).status().expect("run setup.sh");
    assert!(setup.success());
    let rules = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo().join("deploy/prometheus/alerts.yml"))
        .output()
        .expect("promtool");
    assert!(rules.status.success(), "promtool: {}", String::from_utf8_lossy(&rules.stdout));

    let check = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_sluiced")).arg("--check-config").arg("--config").arg(config).output().unwrap()
    };
    let example = check(&repo().join("deploy/sluiced.toml"));
    assert!(example.status.success(), "{}", String::from_utf8_lossy(&example.stderr));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "metrics-listen = \"nowhere\"\n").unwrap();
    let refused = check(&bad);
    assert!(!refused.status.success(), "an invalid address is refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("metrics-listen"));

    // `systemd-analyze verify` needs the unit's binaries to exist: point it at this build.
    let Ok(analyze) = which("systemd-analyze") else {
        panic!("systemd-analyze is not installed (Debian: apt-get install systemd)");
    };
    let unit = std::fs::read_to_string(repo().join("deploy/sluiced.service"))
        .unwrap()
        .replace("/usr/local/bin/sluiced", env!("CARGO_BIN_EXE_sluiced"));
    let path = dir.path().join("sluiced.service");
    std::fs::write(&path, unit).unwrap();
    let verified = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success() && !complaints.contains("sluiced.service"), "{complaints}");
}

fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(program)).find(|file| file.is_file()))
        .ok_or(())
}

/// Starts `sluiced` with `format_args` on free ports, reads its stderr until it is ready,
/// stops it, and returns what it wrote.
fn startup_log(format_args: &[&str]) -> String {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--cores", "1", "--log-level", "info"])
        .args(format_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("sluiced ready") {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    log
}

#[test]
fn logs_carry_no_colour_escapes_off_a_terminal_and_json_is_one_object_a_line() {
    let text = startup_log(&[]);
    assert!(text.contains("sluiced ready"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a log that is no terminal: {text:?}");
    let json = startup_log(&["--log-format", "json"]);
    for line in json.lines() {
        let object: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(object["level"].is_string() && object["fields"].is_object(), "{line}");
    }
    assert!(json.lines().any(|line| line.contains("\"metrics_listen\"")), "{json}");
}

/// The sum of a family's samples in one real scrape of `/metrics` (over its labels, e.g.
/// every core's).
fn scraped(addr: SocketAddr, family: &str) -> f64 {
    scraped_together(addr, &[family])[0]
}

/// The sums of several metric families from one scrape (so they describe one moment).
fn scraped_together(addr: SocketAddr, families: &[&str]) -> Vec<f64> {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    families.iter().map(|family| sum_of(&body, family)).collect()
}

fn sum_of(body: &str, family: &str) -> f64 {
    let samples: Vec<f64> = body
        .lines()
        .filter(|line| line.strip_prefix(family).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("a sample: {line}")))
        .collect();
    assert!(!samples.is_empty(), "no {family} in the scrape: {body}");
    samples.iter().sum()
}

/// Puts `count` records of `bytes` each to `stream`'s one shard, created first.
async fn fill(client: &Client, stream: &str, count: usize, bytes: usize) {
    let request = CreateStreamInput { stream_name: stream.into(), shard_count: Some(1), ..Default::default() };
    client.call(&request).await.expect("create stream");
    for chunk in 0..count.div_ceil(100) {
        let records = (0..100.min(count - chunk * 100))
            .map(|i| PutRecordsRequestEntry {
                data: Bytes::from(vec![b'r'; bytes]),
                partition_key: Some(format!("key-{chunk}-{i}")),
                explicit_hash_key: None,
            })
            .collect();
        let request = PutRecordsInput { stream_name: Some(stream.into()), records, ..Default::default() };
        let response = client.call(&request).await.expect("put records");
        assert_eq!(response.failed_record_count, Some(0));
    }
}

/// Reads `stream`'s one shard from its trim horizon to the tip; how many records it held.
async fn read_everything(client: &Client, stream: &str) -> usize {
    let request = GetShardIteratorInput {
        stream_name: Some(stream.into()),
        stream_arn: None,
        shard_id: "shardId-000000000000".into(),
        shard_iterator_type: ShardIteratorType::TrimHorizon,
        starting_sequence_number: None,
        timestamp: None,
    };
    let mut iterator = client.call(&request).await.expect("iterator").shard_iterator.expect("an open shard");
    let mut records = 0;
    loop {
        let request = GetRecordsInput { shard_iterator: iterator, ..Default::default() };
        let batch = client.call(&request).await.expect("get records");
        records += batch.records.len();
        if batch.records.is_empty() {
            return records;
        }
        iterator = batch.next_shard_iterator.expect("an open shard");
    }
}

#[test]
fn fresh_reads_hit_the_tail_cache_and_reads_after_a_restart_miss_it() {
    let mut daemon = Daemon::start("unlimited", 1);
    let (hits, misses) = ("sluice_tail_cache_hits_total", "sluice_tail_cache_misses_total");
    let before = (scraped(daemon.metrics_addr, hits), scraped(daemon.metrics_addr, misses));
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        fill(&client, "cached", 300, 1024).await;
        assert_eq!(read_everything(&client, "cached").await, 300);
    });
    let fresh = (scraped(daemon.metrics_addr, hits), scraped(daemon.metrics_addr, misses));
    assert!(fresh.0 > before.0, "records just written are read from memory: {before:?} → {fresh:?}");
    assert_eq!(fresh.1, before.1, "and not from disk: {before:?} → {fresh:?}");

    // A restarted daemon's cache is empty: the same records now come from its segment files.
    daemon.restart();
    let restarted = (scraped(daemon.metrics_addr, hits), scraped(daemon.metrics_addr, misses));
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        assert_eq!(read_everything(&client, "cached").await, 300);
    });
    let after = (scraped(daemon.metrics_addr, hits), scraped(daemon.metrics_addr, misses));
    assert!(after.1 > restarted.1, "old records are read from disk: {restarted:?} → {after:?}");
    assert_eq!(after.0, restarted.0, "none of them from memory: {restarted:?} → {after:?}");
    assert!(scraped(daemon.metrics_addr, "sluice_disk_read_bytes_total") > 300.0 * 1024.0);
}

#[test]
fn retention_deletes_a_deleted_streams_segments_and_counts_them() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("sluiced.toml");
    // Small segments, so that the stream fills several, and a retention pass every 100 ms.
    std::fs::write(&config, "[limit-overrides]\nsegment-bytes-max = 65536\nretention-interval-ms = 100\n").unwrap();
    let daemon = Daemon::start_with("unlimited", 1, &["--config", config.to_str().unwrap()]);
    let metrics = daemon.metrics_addr;
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        fill(&client, "doomed", 400, 1024).await;
    });
    let families = [
        "sluice_segments",
        "sluice_segment_bytes",
        "sluice_retention_deleted_segments_total",
        "sluice_retention_deleted_bytes_total",
    ];
    let [segments, bytes, deleted_before, deleted_bytes_before] = scraped_together(metrics, &families)[..] else {
        unreachable!()
    };
    assert!(segments >= 4.0 && bytes >= 400.0 * 1024.0, "{segments} segments of {bytes} bytes");
    // A segment that held nothing but the delivery-state log's first entries may already
    // have gone (see below); none of the stream's records did.
    assert!(deleted_before <= 1.0, "{deleted_before} segments went before the stream was deleted");

    // Deleting the stream makes every sealed segment deletable, the first too: it also holds
    // the `Init` of core 0's delivery-state log, which a snapshot covers once the log lies in
    // a sealed segment (written before the retention pass), so the log lets it go.
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        assert_eq!(read_everything(&client, "doomed").await, 400, "nothing of the stream went");
        let delete = DeleteStreamInput { stream_name: Some("doomed".into()), ..Default::default() };
        client.call(&delete).await.expect("delete stream");
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while scraped(metrics, "sluice_retention_deleted_segments_total") < deleted_before + segments - 1.0 {
        let now = (scraped(metrics, "sluice_retention_deleted_segments_total"), scraped(metrics, "sluice_segments"));
        assert!(Instant::now() < deadline, "retention did not delete the sealed segments of {segments}: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let families = [
        "sluice_retention_deleted_segments_total",
        "sluice_retention_deleted_bytes_total",
        "sluice_segments",
        "sluice_segment_bytes",
    ];
    let [deleted, deleted_bytes, left, left_bytes] = scraped_together(metrics, &families)[..] else { unreachable!() };
    // Every segment but the active one went; the active one too if a snapshot part rolled the
    // journal into a new segment meanwhile.
    let went = deleted - deleted_before;
    assert!(went == segments - 1.0 || went == segments, "{went} of {segments} segments went");
    assert_eq!(left, 1.0);
    assert!(scraped(metrics, "sluice_delivery_snapshots_total") >= 1.0, "a snapshot released the log's first entry");
    // The bytes they held: all but what is left (snapshot parts may have added a few).
    let deleted_bytes = deleted_bytes - deleted_bytes_before;
    assert!(
        deleted_bytes >= bytes - left_bytes && deleted_bytes <= bytes + 65536.0,
        "{deleted_bytes} of {bytes} ({left_bytes} left)"
    );
    assert!(deleted_bytes >= 200.0 * 1024.0, "{deleted_bytes}");
    assert_eq!(scraped(metrics, "sluice_retention_expired_records_total"), 0.0, "deleted, not expired");
}

#[test]
fn records_for_another_core_s_shard_are_counted_as_cross_core_jobs() {
    let daemon = Daemon::start("unlimited", 2);
    let jobs = "sluice_mailbox_jobs_received_total";
    let endpoint = daemon.endpoint();
    let metrics = daemon.metrics_addr;
    // Two shards on a fresh two-core node sit on different cores (each goes to the least loaded
    // one), so whichever core this connection lands on, the records of one shard are another
    // core's work.
    run(move || async move {
        let client = Client::connect(&endpoint).await.expect("connect");
        let request = CreateStreamInput { stream_name: "split".into(), shard_count: Some(2), ..Default::default() };
        client.call(&request).await.expect("create stream");
        let before = scraped(metrics, jobs);
        for i in 0..100u128 {
            // Explicit hash keys in the lower and upper half of the key space: shards 0 and 1.
            let hash_key = if i % 2 == 0 { 1 } else { u128::MAX - 1 };
            let request = PutRecordInput {
                stream_name: Some("split".into()),
                data: Bytes::from_static(b"x"),
                partition_key: Some("k".into()),
                explicit_hash_key: Some(HashKey(hash_key)),
                ..Default::default()
            };
            client.call(&request).await.expect("put record");
        }
        let after = scraped(metrics, jobs);
        // 50 puts to the other core's shard, plus the scrapes' own jobs (one per core each).
        assert!(after - before >= 50.0, "cross-core jobs {before} → {after}");
    });
}
