//! The network: one listener loop ([`listener::serve`]) serving both protocols, the native
//! protocol's connections ([`native`]), and the AWS-compatible HTTP API ([`http`]). Each turns
//! bytes into a model `Request`, has `ops::dispatch::execute` run it, and turns the answer
//! back into bytes; none runs an operation itself.
//!
//! Layer: imports `ops`, `runtime`, `kinesis` and `limits`.

pub mod frame_pool;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod native;
pub mod native_auth;
#[cfg(feature = "firehose")]
pub mod native_firehose;
pub mod outbound;
pub mod receive;
