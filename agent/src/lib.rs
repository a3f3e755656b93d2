//! `sluice-agent`: a native replacement of the Kinesis Agent.
//!
//! It reads the Kinesis Agent's own `agent.json` unchanged ([`config`]), tails the files each
//! flow names through rotations of both kinds ([`tail`], [`identity`]), turns their bytes into
//! records ([`split`]) and processes them as the AWS agent's `dataProcessingOptions` do
//! ([`process`]), hands them to a [`sink::Sink`], and moves its checkpoints ([`checkpoint`])
//! only past records the sink acknowledged: at-least-once, with duplicates after a crash
//! bounded by the records in flight.
//!
//! # Threads and bounds
//!
//! One thread per flow reads, splits, processes and submits; a watcher thread turns inotify
//! events into wake-ups (with a rescan on a timer, and polling when inotify is unavailable);
//! one checkpointer thread writes the checkpoint file; the sink has threads of its own. Every
//! queue between them is bounded, and each flow has a window of records in flight
//! ([`limits::WINDOW_RECORDS_MAX`], [`limits::WINDOW_BYTES_MAX`]): when it is full, because
//! the sink is slow or throttled, the flow stops reading instead of buffering.
//!
//! # The sink boundary
//!
//! [`sink::Sink`] is where records leave. [`stream_sink::StreamSink`] (the default) ships them
//! to a Kinesis stream on sluiced with PutRecords through `sluice-client`, over the native
//! protocol or the AWS JSON API over HTTP, and to a Firehose delivery stream with
//! PutRecordBatch; [`producer_sink::ProducerSink`] ships stream flows that set
//! `aggregatedRecordSizeBytes` through `sluice-client`'s KPL producer (aggregation, rate
//! limits, retries); [`file_sink::FileSink`] appends records to files (`--sink-file DIR`).
//! Requests are signed (SigV4 over HTTP(S), the native handshake on sluiced's native port)
//! with the credentials [`access`] finds, and `https://` endpoints (AWS itself, or sluiced with
//! TLS) trust the system's roots.

pub mod access;
pub mod checkpoint;
pub mod config;
pub mod endpoint;
pub mod exposition;
pub mod file_sink;
pub mod identity;
pub mod json;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod process;
pub mod producer_sink;
pub mod run;
pub mod sink;
pub mod split;
pub mod stream_sink;
pub mod tail;
pub mod watch;
