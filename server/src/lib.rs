//! `sluiced`, the Sluice daemon: Kinesis Data Streams semantics on a thread-per-core runtime.
//!
//! - [`daemon`]: configuration, start-up, shutdown; [`ownership`]: one daemon per data
//!   directory and per listening address.
//! - [`node`]: the per-core runtime: executors, bounded mailboxes, the routes snapshot.
//! - [`service`] and [`subscription`]: the Kinesis operations on plain [`model`] values.
//! - [`native`] and [`connection`]: the native flatbuffers protocol over TCP.
//! - [`http`]: the AWS-compatible HTTP API (JSON and CBOR, HTTP/1.1 and HTTP/2) for the AWS
//!   SDKs and CLI.
//! - [`throttle`], [`shard_iterator`], [`arn`], [`limits`]: pure pieces, tested alone.
//!
//! Only this crate knows about wire formats and Kinesis error names; the engine knows
//! neither.

pub mod arn;
pub mod connection;
pub mod daemon;
pub mod error;
pub mod http;
pub mod limits;
pub mod model;
pub mod native;
pub mod node;
pub mod on_demand;
pub mod ownership;
pub mod reshard;
pub mod service;
pub mod shard_iterator;
pub mod subscription;
pub mod throttle;
