//! `--metrics URL`: the daemon's own figures beside the loadgen's. The endpoint is scraped
//! before and after a scenario; the difference of every counter (summed over its labels, and
//! per stream for the stream-level families) goes into the JSON (`server_metrics`) and the
//! summary.

use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Bytes of a metrics page read at most (1,000 shards with enhanced monitoring are a few MB).
const METRICS_PAGE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long a scrape may take.
const SCRAPE_TIMEOUT_S: u64 = 30;

/// One scrape: each sample's value by its full series name (`name{labels}`).
pub type Scrape = BTreeMap<String, f64>;

/// `http://host:port/path`, or `host:port` (path `/metrics`).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/metrics"),
    }
}

/// `--metrics`' page, while a run uses it ([`watch`]).
static WATCHED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// The page as it was just before the run deleted its streams ([`before_clean_up`]).
static BEFORE_CLEAN_UP: std::sync::Mutex<Option<Scrape>> = std::sync::Mutex::new(None);

/// Tells [`before_clean_up`] which page to read.
pub fn watch(url: &str) {
    let _ = WATCHED.set(url.to_owned());
}

/// Scrapes the watched page, if any, before a run deletes its streams: a stream's series
/// leave the page with it, so a scrape after the deletion would count none of its records.
/// A failed scrape leaves the run to its scrape at the end.
pub fn before_clean_up() {
    if let Some(url) = WATCHED.get() {
        match scrape(url) {
            Ok(page) => *BEFORE_CLEAN_UP.lock().expect("not poisoned") = Some(page),
            Err(error) => eprintln!("scrape of {url} before deleting the streams failed: {error:#}"),
        }
    }
}

/// The page [`before_clean_up`] read, once.
pub fn take_before_clean_up() -> Option<Scrape> {
    BEFORE_CLEAN_UP.lock().expect("not poisoned").take()
}

/// Fetches and parses the metrics page at `url`.
pub fn scrape(url: &str) -> anyhow::Result<Scrape> {
    let (host, path) = split_url(url);
    let mut stream = TcpStream::connect(host).with_context(|| format!("connect to the metrics port {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(SCRAPE_TIMEOUT_S)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut page = String::new();
    stream.take(METRICS_PAGE_BYTES_MAX).read_to_string(&mut page)?;
    let (head, body) = page.split_once("\r\n\r\n").context("no HTTP response from the metrics port")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{url}: {head}");
    Ok(parse(body))
}

/// The samples of a text-format page; lines that are no sample are skipped.
pub fn parse(text: &str) -> Scrape {
    let mut samples = Scrape::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        if let Ok(value) = value.parse::<f64>() {
            samples.insert(series.to_owned(), value);
        }
    }
    samples
}

/// A family's name: the series name without its labels.
fn family(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// The `stream` label of a series, if it has one.
fn stream_label(series: &str) -> Option<&str> {
    let labels = series.split_once('{')?.1;
    let start = labels.find("stream=\"")? + "stream=\"".len();
    let end = labels[start..].find('"')?;
    Some(&labels[start..start + end])
}

/// What changed between two scrapes: every counter's (`_total`, histogram `_count`/`_sum`)
/// increase summed over its series, and per stream for the families labelled by stream.
#[derive(Debug, Default, serde::Serialize)]
pub struct Delta {
    pub totals: BTreeMap<String, f64>,
    pub per_stream: BTreeMap<String, BTreeMap<String, f64>>,
}

pub fn delta(before: &Scrape, after: &Scrape) -> Delta {
    let mut delta = Delta::default();
    for (series, value) in after {
        let name = family(series);
        let counter = name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_sum");
        if !counter {
            continue;
        }
        let increase = value - before.get(series).copied().unwrap_or(0.0);
        *delta.totals.entry(name.to_owned()).or_default() += increase;
        if let Some(stream) = stream_label(series) {
            if !name.starts_with("sluice_shard_") {
                *delta.per_stream.entry(stream.to_owned()).or_default().entry(name.to_owned()).or_default() += increase;
            }
        }
    }
    delta
}

/// The summary's lines: the figures a reader compares with the loadgen's own.
pub fn table(delta: &Delta) -> String {
    let pick = [
        ("records stored (IncomingRecords)", "sluice_incoming_records_total"),
        ("bytes stored (IncomingBytes)", "sluice_incoming_bytes_total"),
        ("write throttles (WriteProvisionedThroughputExceeded)", "sluice_write_provisioned_throughput_exceeded_total"),
        ("read throttles (ReadProvisionedThroughputExceeded)", "sluice_read_provisioned_throughput_exceeded_total"),
        ("records read by GetRecords", "sluice_get_records_records_total"),
        ("records pushed to subscribers", "sluice_subscribe_to_shard_event_records_total"),
        ("group commits", "sluice_group_commit_records_count"),
        ("fdatasyncs", "sluice_fdatasync_latency_seconds_count"),
        ("bytes written to disk", "sluice_disk_written_bytes_total"),
    ];
    let mut text = String::from("server side (from --metrics, after minus before):\n");
    for (what, name) in pick {
        let value = delta.totals.get(name).copied().unwrap_or(0.0);
        text.push_str(&format!("  {what:<55} {value:>16.0}\n"));
    }
    let commits = delta.totals.get("sluice_group_commit_records_count").copied().unwrap_or(0.0);
    let records = delta.totals.get("sluice_group_commit_records_sum").copied().unwrap_or(0.0);
    if commits > 0.0 {
        text.push_str(&format!("  {:<55} {:>16.1}\n", "records per group commit (mean)", records / commits));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_sum_counters_and_split_by_stream() {
        let before = parse("# TYPE x counter\nsluice_incoming_records_total{stream=\"a\"} 10\n");
        let after = parse(
            "sluice_incoming_records_total{stream=\"a\"} 15\nsluice_incoming_records_total{stream=\"b\"} 7\n\
             sluice_shard_incoming_records_total{stream=\"a\",shard=\"s\"} 5\nsluice_ready 1\ngarbage\n",
        );
        let delta = delta(&before, &after);
        assert_eq!(delta.totals["sluice_incoming_records_total"], 12.0);
        assert_eq!(delta.per_stream["a"]["sluice_incoming_records_total"], 5.0);
        assert!(!delta.per_stream["a"].contains_key("sluice_shard_incoming_records_total"));
        assert!(!delta.totals.contains_key("sluice_ready"), "gauges are no deltas");
        assert_eq!(split_url("http://h:1/m"), ("h:1", "/m"));
        assert_eq!(split_url("h:1"), ("h:1", "/metrics"));
    }
}
