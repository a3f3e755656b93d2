//! Back-pressure: when the sink stops taking records, the flow stops reading (its memory stays
//! bounded by its window), and when the sink takes records again everything arrives, in order.
//!
//! The sink here is a second real implementation of the `Sink` trait (not a mock of the file
//! sink): it holds what it accepts, up to a capacity, and acknowledges only when told to, like
//! a producer whose destination is throttling.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{append, wait_for, Scene};
use sluice_agent::config::{AgentConfig, BufferLimits, Destination};
use sluice_agent::limits;
use sluice_agent::metrics::Status;
use sluice_agent::run::{self, RunOptions};
use sluice_agent::sink::{Sink, SinkError, SinkRecord, SubmitError};

struct GatedSink {
    capacity: usize,
    held: Mutex<Vec<SinkRecord>>,
    delivered: Mutex<Vec<Vec<u8>>>,
    open: AtomicBool,
}

impl GatedSink {
    /// Acknowledges everything held (the destination stopped throttling).
    fn release(&self) -> usize {
        let records: Vec<SinkRecord> = std::mem::take(&mut *self.held.lock().unwrap());
        let count = records.len();
        let mut delivered = self.delivered.lock().unwrap();
        for record in records {
            delivered.push(record.data.clone());
            record.ack.delivered(1);
        }
        count
    }
}

impl Sink for GatedSink {
    fn open(&self, _: &Destination, _: BufferLimits) -> Result<(), SinkError> {
        Ok(())
    }
    fn submit(&self, records: Vec<SinkRecord>, wait: Duration) -> Result<(), SubmitError> {
        let mut held = self.held.lock().unwrap();
        if held.len() + records.len() > self.capacity && !self.open.load(Ordering::Acquire) {
            drop(held);
            std::thread::sleep(wait);
            return Err(SubmitError::Full(records));
        }
        held.extend(records);
        Ok(())
    }
    fn flush(&self) {}
    fn shutdown(&self, _: Duration) {}
    fn describe(&self) -> String {
        "gated sink".into()
    }
}

#[test]
fn a_full_sink_stops_reading_and_nothing_is_lost() {
    let scene = Scene::new("app.log", r#""initialPosition": "START_OF_FILE""#);
    // 30 MB of numbered lines of 100 bytes.
    let line_count = 300_000;
    let text: String = (0..line_count).map(|i| format!("line {i:09} {}\n", "y".repeat(80))).collect();
    append(&scene.log("app.log"), &text);

    let sink = Arc::new(GatedSink {
        capacity: 1000,
        held: Mutex::new(Vec::new()),
        delivered: Mutex::new(Vec::new()),
        open: AtomicBool::new(false),
    });
    let config = AgentConfig::load(&scene.config).unwrap();
    let status_file = scene.dir.path().join("status");
    let options = RunOptions { status_file: Some(status_file.clone()), ..RunOptions::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let sink: Arc<dyn Sink> = sink.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || run::run_with_sink(config, options, sink, stop, Arc::new(AtomicBool::new(false))))
    };

    // The sink fills up; the flow then stalls with a bounded amount read.
    let read_when_full = wait_for("the flow to stall", || {
        let status = Status::load(&status_file).ok()?;
        let flow = &status.flows[0];
        (!sink.held.lock().unwrap().is_empty() && flow.backpressure_stalls > 0).then_some(flow.bytes_read)
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = Status::load(&status_file).unwrap();
    // The window holds at most WINDOW_RECORDS_MAX records (of 100 bytes here) or
    // WINDOW_BYTES_MAX bytes; one chunk may wait split in the backlog, one more in flight.
    let bound =
        ((limits::WINDOW_RECORDS_MAX * 100).min(limits::WINDOW_BYTES_MAX) + 2 * limits::READ_CHUNK_BYTES) as u64;
    assert!(
        status.flows[0].bytes_read <= bound,
        "read {} bytes with the sink full (bound {bound})",
        status.flows[0].bytes_read
    );
    assert!(status.flows[0].records_submitted <= 1000);
    assert!(read_when_full <= bound);
    assert!((status.flows[0].bytes_read as usize) < text.len() / 3);

    // The destination recovers: everything arrives, in order, once.
    sink.open.store(true, Ordering::Release);
    wait_for("every line delivered", || {
        sink.release();
        (sink.delivered.lock().unwrap().len() >= line_count).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    sink.release();
    stop.store(true, Ordering::Release);
    let summary = agent.join().unwrap().unwrap();
    let delivered = sink.delivered.lock().unwrap();
    assert_eq!(delivered.len(), line_count);
    for (i, (got, want)) in delivered.iter().zip(text.split_inclusive('\n')).enumerate() {
        assert_eq!(got, want.as_bytes(), "line {i}");
    }
    let flow = &summary.status.flows[0];
    assert_eq!(flow.records_sent, line_count as u64);
    assert_eq!(flow.throttles, line_count as u64, "the sink's throttle counts reach the metrics");
    assert_eq!(flow.lag_bytes, 0);
}
