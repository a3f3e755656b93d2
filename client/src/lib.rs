//! An async client for the native protocol of `sluiced`, the Sluice daemon.
//!
//! The native protocol carries the AWS Kinesis operations as length-prefixed flatbuffers
//! frames over one TCP connection (`docs/protocol.md`). This crate speaks it with the model's
//! types (`sluice-model`, re-exported here): [`Client::call`] takes any operation's input
//! (`PutRecordInput { stream_name, data, partition_key, .. }`) and returns its output, and
//! [`Client::subscribe_to_shard`] returns a [`Subscription`] of SubscribeToShard's events. The
//! frames are the protocol crate's codec, the same one the server uses.
//!
//! ```no_run
//! use bytes::Bytes;
//! use sluice_client::{Client, PutRecordInput};
//!
//! glommio::LocalExecutorBuilder::default()
//!     .make()
//!     .unwrap()
//!     .run(async {
//!         let client = Client::connect("127.0.0.1:4568").await?;
//!         let put = PutRecordInput {
//!             stream_name: Some("orders".into()),
//!             data: Bytes::from_static(b"hello"),
//!             partition_key: Some("customer-17".into()),
//!             ..Default::default()
//!         };
//!         let output = client.call(&put).await?;
//!         println!("{} {}", output.shard_id, output.sequence_number);
//!         Ok::<_, sluice_client::ClientError>(())
//!     })
//!     .unwrap();
//! ```
//!
//! [`aws::HttpClient`] speaks the AWS JSON protocol instead, with the same types: to sluiced's
//! HTTP port (the load generator measures it), or to anything that speaks Kinesis' API.
//! [`firehose`] adds Firehose's PutRecordBatch to it (delivery streams, on the same port).
//!
//! # Design
//!
//! - **Runtime.** The client runs on glommio, like the daemon: one connection belongs to one
//!   executor thread (`Rc` inside, `!Send`), and clones of a [`Client`] share it.
//! - **Pipelining.** Requests from any number of tasks are in flight at once, up to
//!   [`REQUESTS_IN_FLIGHT_MAX`]. Each gets a fresh correlation id; frames are written whole,
//!   one request at a time; a reader task matches responses to waiters by id, in whatever
//!   order the server's cores answer.
//! - **Bounded memory.** The receive buffer grows only to the length of the frame being read,
//!   and never past `FRAME_BYTES_MAX` (`recv_buffer`). Each subscription queues at most
//!   [`SUBSCRIPTION_EVENTS_QUEUED_MAX`] events; a slow subscriber makes the reader wait, which
//!   through TCP makes the server wait, rather than making the client buffer.
//! - **Errors.** A Kinesis error is [`ClientError::Service`], the model's error. A
//!   broken connection fails every request on it with the same [`ConnectionError`]. No bytes
//!   from the server can make the client panic: a frame that fails verification closes the
//!   connection with [`ConnectionError::Frame`].
//!
//! [`RoutedClient`] ([`routed`]) is for a cluster: it learns each shard's leader
//! (DescribeStreamRoutes) and sends PutRecord and PutRecords straight there, splitting a
//! PutRecords by leader, and retries once through any node when a route turns out stale.
//!
//! Not here, deliberately (on [`Client`]): retries and reconnection (the caller knows which operations are
//! safe to repeat), connection pools for the native protocol, and request signing over HTTP
//! ([`aws::HttpClient`] sends unsigned requests, which sluiced accepts without
//! `--credentials`). Native connections authenticate with [`Client::connect_with`] and
//! [`ConnectOptions`] ([`auth`]: AWS credentials from the environment; [`tls`]: a CA bundle).
//!
//! The `sluice` binary in this crate is a command-line front end with the AWS CLI's
//! `aws kinesis` commands and output format.

pub mod auth;
pub mod aws;
mod connection;
pub mod consumer;
mod errors;
pub mod firehose;
pub mod producer;
mod recv_buffer;
pub mod route_table;
pub mod routed;
#[cfg(test)]
mod test_frames;
pub mod tls;
pub mod transport;
pub mod worker;

pub use auth::ConnectOptions;
pub use connection::{Client, Subscription, REQUESTS_IN_FLIGHT_MAX, SUBSCRIPTION_EVENTS_QUEUED_MAX};
pub use errors::{ClientError, ConnectionError};
pub use routed::{RoutedClient, RoutedConfig, RoutedStats};
pub use sluice_model::*;
pub use sluice_protocol::aws::Encoding;
pub use sluice_protocol::native::EncodeInput;
