//! Sans-IO producer and consumer cores for Kinesis-compatible streams: what the Kinesis
//! Producer Library (KPL) and the Kinesis Client Library (KCL) do, as pure state machines.
//!
//! Nothing here does I/O, reads a clock or spawns a task. Every entry point takes the time
//! (`now_ms`, milliseconds of any monotonic clock) and the events that happened; it returns
//! what to do next. A thin async driver (planned in `sluice-client`, for the native protocol
//! and for HTTP, which can target AWS itself) owns the sockets and timers; tests drive the same
//! code with hand-made events and a fake clock, deterministically.
//!
//! - [`aggregation`]: the KPL aggregated record format (magic, protobuf, MD5), byte-compatible
//!   with the KPL and aws-kinesis-agg; encoding with exact sizes, deaggregation as the KCL does.
//! - [`producer`]: user records in, PutRecords calls out: shard prediction, aggregation,
//!   collection, rate limits, TTLs, retries with backoff, per-key ordering, back-pressure,
//!   metrics.
//! - [`consumer`]: deaggregation of received records, the checkpoint tracker, the lease
//!   balancer (the KCL lease taker as a pure function) and the record-processor lifecycle.
//! - [`types`], [`shard_map`], [`retry`], [`token_bucket`], [`limits`]: the pieces they share.
//!
//! # Unfinished
//!
//! - The drivers: nothing here talks to a server yet (see docs/clients.md for the plan).
//! - [`types`] are stand-ins for the model crate's newtypes (issue 11). Its `SequenceNumber`
//!   holds a `u128`, which Sluice's sequence numbers fit but AWS's 56-digit ones (up to 188
//!   bits) do not: a driver reading from AWS itself needs a wider type there first.
//! - The lease operations are pure decisions over a lease table as seen; the durable, fenced
//!   lease store is the server's (issue 14, server side).

pub mod aggregation;
pub mod consumer;
pub mod limits;
pub mod producer;
pub mod retry;
pub mod shard_map;
pub mod token_bucket;
pub mod types;
