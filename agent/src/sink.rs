//! The sink boundary: where records leave the agent.
//!
//! A flow hands records to a [`Sink`] with [`Sink::submit`]; each record carries an [`Ack`],
//! which the sink completes when the record is delivered (or has failed for good). The flow
//! moves its checkpoint past a record only after the record's `Ack` said "delivered" (or
//! "failed" for good) and every record before it in the file did too.
//!
//! The contract a sink implements ([`crate::stream_sink::StreamSink`] implements it for streams
//! over the native or HTTP protocol and for delivery streams, [`crate::producer_sink::ProducerSink`]
//! through `sluice-client`'s KPL producer, [`crate::file_sink::FileSink`] on local files):
//!
//! - **Bounded.** `submit` either takes the records or, when the sink has no room for them
//!   within `wait`, hands them back ([`SubmitError::Full`]); the flow then stops reading until
//!   there is room. A sink never buffers without bound, and a throttled destination shows up
//!   here as back-pressure, not as memory.
//! - **Per-record completion.** Every `Ack` is completed exactly once: [`Ack::delivered`] (with
//!   how often the record was throttled on the way), or [`Ack::failed`] for a record the
//!   destination will never take (the flow logs and counts it, and skips it, as the AWS agent
//!   drops records that fail permanently). Retrying throttled or failed-but-retryable records
//!   (with `retryInitialBackoffMillis` / `retryMaxBackoffMillis`) is the sink's job. An `Ack`
//!   dropped without completion reports [`Outcome::Abandoned`]: the flow never moves its
//!   checkpoint past that record in this run, so it is sent again after a restart.
//! - **Completions in any order.** Records may complete out of order (different partition
//!   keys go to different shards); the flow keeps its own order.
//! - **Buffering is the sink's.** The flow passes each destination's `maxBufferAgeMillis`,
//!   `maxBufferSizeRecords` and `maxBufferSizeBytes` to [`Sink::open`]; the sink collects
//!   records into calls within those limits. [`Sink::flush`] asks it to send what it holds now
//!   (`--once`, shutdown).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::config::{BufferLimits, Destination, FlowConfig};

/// A record on its way out.
#[derive(Debug)]
pub struct SinkRecord {
    pub destination: Arc<Destination>,
    /// The partition key (streams); `None` for delivery streams.
    pub partition_key: Option<String>,
    pub data: Vec<u8>,
    pub ack: Ack,
    /// Its flow ships records in KPL aggregates (`aggregatedRecordSizeBytes` > 0): a stream
    /// may have flows of both kinds, and only this says which a record came from.
    pub aggregated: bool,
}

/// How a record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (durable at the destination), after `throttles` throttling errors.
    Delivered { throttles: u32 },
    /// The destination will never take this record.
    Failed { reason: String },
    /// The sink dropped the record's `Ack` without completing it (shutdown, or a sink bug).
    Abandoned,
}

/// A completion sent back to the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub ticket: u64,
    pub outcome: Outcome,
}

/// The handle a sink completes once per record.
#[derive(Debug)]
pub struct Ack {
    completions: Option<Sender<Completion>>,
    ticket: u64,
}

impl Ack {
    /// An `Ack` that reports to `completions` under `ticket` (the flow's record number).
    pub fn new(completions: Sender<Completion>, ticket: u64) -> Ack {
        Ack { completions: Some(completions), ticket }
    }

    /// The record was delivered.
    pub fn delivered(self, throttles: u32) {
        self.complete(Outcome::Delivered { throttles });
    }

    /// The record will never be delivered.
    pub fn failed(self, reason: impl Into<String>) {
        self.complete(Outcome::Failed { reason: reason.into() });
    }

    fn complete(mut self, outcome: Outcome) {
        if let Some(completions) = self.completions.take() {
            // The flow's completion queue holds a whole window, so this never blocks; if the
            // flow is gone (shutting down) the completion no longer matters.
            let _ = completions.send(Completion { ticket: self.ticket, outcome });
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(completions) = self.completions.take() {
            let _ = completions.try_send(Completion { ticket: self.ticket, outcome: Outcome::Abandoned });
        }
    }
}

/// Why `submit` did not take the records; they are handed back.
#[derive(Debug)]
pub enum SubmitError {
    /// No room within the wait: try again later (back-pressure).
    Full(Vec<SinkRecord>),
    /// The sink is shut down.
    Closed(Vec<SinkRecord>),
}

/// A sink that cannot serve a destination.
#[derive(Debug, thiserror::Error)]
#[error("sink cannot serve {destination}: {message}")]
pub struct SinkError {
    pub destination: String,
    pub message: String,
}

/// Where records go. See the module docs for the contract.
pub trait Sink: Send + Sync {
    /// Prepares a destination with its flow's buffer limits. Called once per flow before its
    /// first `submit`; several flows may name one destination.
    fn open(&self, destination: &Destination, limits: BufferLimits) -> Result<(), SinkError>;

    /// [`Sink::open`] for a flow, for sinks that need more of its settings than the buffer
    /// limits (the stream sink takes its retry backoff too).
    fn open_flow(&self, flow: &FlowConfig) -> Result<(), SinkError> {
        self.open(&flow.destination, flow.buffer)
    }

    /// Hands records over, waiting at most `wait` for room.
    fn submit(&self, records: Vec<SinkRecord>, wait: Duration) -> Result<(), SubmitError>;

    /// Sends whatever is buffered now instead of waiting for the buffer limits.
    fn flush(&self);

    /// Stops taking records. Records taken and not yet delivered are abandoned (their `Ack`s
    /// report [`Outcome::Abandoned`]) unless delivered within `timeout`.
    fn shutdown(&self, timeout: Duration);

    /// A short description for logs and the status line.
    fn describe(&self) -> String;
}
