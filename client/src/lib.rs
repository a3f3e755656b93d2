//! An async client for the native protocol of `sluiced`, the Sluice daemon.
//!
//! The native protocol carries the AWS Kinesis operations as length-prefixed flatbuffers
//! frames over one TCP connection (`docs/protocol.md`). This crate turns it back into plain
//! Rust: one async method per operation on [`Client`], taking and returning owned structs
//! whose fields are the Kinesis members in snake case (`PutRecordRequest { stream_name,
//! data, partition_key, .. }`), and [`Subscription`] for SubscribeToShard's event stream.
//!
//! ```no_run
//! use bytes::Bytes;
//! use sluice_client::{Client, PutRecordRequest};
//!
//! glommio::LocalExecutorBuilder::default()
//!     .make()
//!     .unwrap()
//!     .run(async {
//!         let client = Client::connect("127.0.0.1:4568").await?;
//!         let put = PutRecordRequest {
//!             stream_name: Some("orders".into()),
//!             data: Bytes::from_static(b"hello"),
//!             partition_key: "customer-17".into(),
//!             ..Default::default()
//!         };
//!         let response = client.put_record(&put).await?;
//!         println!("{} {}", response.shard_id, response.sequence_number);
//!         Ok::<_, sluice_client::ClientError>(())
//!     })
//!     .unwrap();
//! ```
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
//! - **Errors.** A Kinesis error is [`ClientError::Service`] with the AWS exception name. A
//!   broken connection fails every request on it with the same [`ConnectionError`]. No bytes
//!   from the server can make the client panic: a frame that fails verification closes the
//!   connection with [`ConnectionError::Frame`].
//!
//! Not here, deliberately: retries and reconnection (the caller knows which operations are
//! safe to repeat), connection pools, and the HTTP/JSON API (the daemon serves that for AWS
//! SDKs).
//!
//! The `sluice` binary in this crate is a command-line front end with the AWS CLI's
//! `aws kinesis` commands and output format.

mod connection;
mod decode;
mod encode;
mod error;
mod recv_buffer;
#[cfg(test)]
mod test_frames;
mod types;

pub use connection::{Client, Subscription, REQUESTS_IN_FLIGHT_MAX, SUBSCRIPTION_EVENTS_QUEUED_MAX};
pub use error::{ClientError, ConnectionError};
pub use sluice_protocol::wire::ErrorCode;
pub use types::*;
