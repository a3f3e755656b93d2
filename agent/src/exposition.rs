//! The agent's counters on a Prometheus endpoint (`--metrics-listen`), by the convention of
//! sluiced's metrics port (`docs/operations.md`): `GET /metrics` in the OpenMetrics text
//! format encoded by `prometheus-client`, `GET /health/live`, the `sluice_` prefix (here
//! `sluice_agent_`), `_total` on counters, one series per flow (label `flow`).
//!
//! The flows count in their own atomics ([`crate::metrics::FlowMetrics`]); a scrape takes the
//! same snapshot the status file is written from, so the two always agree.

use crate::limits;
use crate::metrics::Status;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A status's figures in the text format.
pub fn render(status: &Status) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(status.clone())));
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

#[derive(Debug)]
struct Scrape(Status);

/// A flow's figure, picked from its status.
type Pick = fn(&crate::metrics::FlowStatus) -> u64;

type Row<'a> = ([(&'static str, &'a str); 1], u64);

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut out: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let flows = &self.0.flows;
        let counters: [(&str, &str, Pick); 10] = [
            ("lines_read", "Records (lines, or multi-line records) read from files", |f| f.lines_read),
            ("read_bytes", "Bytes read from files", |f| f.bytes_read),
            ("records_sent", "Records the destination acknowledged", |f| f.records_sent),
            ("sent_bytes", "Bytes of data in acknowledged records", |f| f.bytes_sent),
            ("records_failed", "Records the sink gave up on after its retries", |f| f.records_failed),
            ("records_skipped", "Records LOGTOJSON did not match (not sent)", |f| f.records_skipped),
            ("processing_errors", "Records a processing option failed on (sent unprocessed)", |f| f.processing_errors),
            ("throttles", "Throttling answers the sink retried", |f| f.throttles),
            ("backpressure_stalls", "Times the flow stopped reading: its window of records in flight was full", |f| {
                f.backpressure_stalls
            }),
            ("truncation_lost_bytes", "Bytes cut from files before they were read", |f| f.bytes_lost_to_truncation),
        ];
        for (name, help, pick) in counters {
            let rows = flows.iter().map(|flow| -> Row<'_> { ([("flow", flow.id.as_str())], pick(flow)) });
            let name = format!("sluice_agent_{name}");
            let mut family = out.encode_descriptor(&name, help, None, MetricType::Counter)?;
            for (labels, value) in rows {
                family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        let gauges: [(&str, &str, Pick); 3] = [
            ("records_in_flight", "Records submitted and not yet acknowledged or failed", |f| {
                f.records_submitted.saturating_sub(f.records_sent + f.records_failed)
            }),
            ("files_tailed", "Files the flow tracks", |f| f.files.len() as u64),
            (
                "lag_bytes",
                "Bytes of the flow's files past its checkpoint (acknowledged offset) up to their ends",
                |f| f.lag_bytes,
            ),
        ];
        for (name, help, pick) in gauges {
            let name = format!("sluice_agent_{name}");
            let mut family = out.encode_descriptor(&name, help, None, MetricType::Gauge)?;
            for flow in flows {
                family.encode_family(&[("flow", flow.id.as_str())])?.encode_gauge(&(pick(flow) as i64))?;
            }
        }
        let uptime_s = self.0.updated_unix_ms.saturating_sub(self.0.started_unix_ms) / 1000;
        let mut family = out.encode_descriptor(
            "sluice_agent_uptime_seconds",
            "Seconds since the agent started",
            None,
            MetricType::Gauge,
        )?;
        family.encode_gauge(&(uptime_s as i64))?;
        Ok(())
    }
}

/// Answers the metrics port's connections one at a time, on the calling thread, until the
/// listener fails. `status` takes the figures of the moment.
pub fn serve(listener: TcpListener, status: impl Fn() -> Status) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(error) = answer(stream, &status) {
                    tracing::debug!(%error, "metrics request not answered");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "metrics port: accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Reads one request head (bounded in bytes and time) and answers it.
fn answer(mut stream: TcpStream, status: &impl Fn() -> Status) -> std::io::Result<()> {
    stream.set_read_timeout(Some(limits::METRICS_REQUEST_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let path = loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; limits::METRICS_REQUEST_HEADERS_MAX];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                break (request.method == Some("GET")).then(|| request.path.unwrap_or("").to_owned());
            }
            Ok(httparse::Status::Partial) if head.len() < limits::METRICS_REQUEST_BYTES_MAX => continue,
            Ok(httparse::Status::Partial) => {
                return respond(&mut stream, "431 Request Header Fields Too Large", "", "")
            }
            Err(_) => return respond(&mut stream, "400 Bad Request", "text/plain", "bad request\n"),
        }
    };
    match path.as_deref().map(|path| path.split('?').next().unwrap_or(path)) {
        Some("/metrics") => respond(&mut stream, "200 OK", CONTENT_TYPE, &render(&status())),
        Some("/health/live") => respond(&mut stream, "200 OK", "text/plain", "live\n"),
        Some(_) => respond(&mut stream, "404 Not Found", "text/plain", "GET /metrics or /health/live\n"),
        None => respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET only\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FlowStatus;

    #[test]
    fn every_flow_has_its_series_under_the_agent_prefix() {
        let flow = |id: &str, lines_read| FlowStatus {
            id: id.into(),
            lines_read,
            records_submitted: 10,
            records_sent: 7,
            records_failed: 1,
            ..Default::default()
        };
        let status = Status {
            started_unix_ms: 1_000,
            updated_unix_ms: 4_500,
            flows: vec![flow("a", 12), flow("b\"quoted\"", 0)],
            ..Default::default()
        };
        let text = render(&status);
        assert!(text.contains("sluice_agent_lines_read_total{flow=\"a\"} 12\n"), "{text}");
        assert!(text.contains("sluice_agent_lines_read_total{flow=\"b\\\"quoted\\\"\"} 0\n"), "{text}");
        assert!(text.contains("sluice_agent_records_in_flight{flow=\"a\"} 2\n"), "{text}");
        assert!(text.contains("sluice_agent_uptime_seconds 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
