//! The Kinesis API as plain Rust values, whichever protocol carries it.
//!
//! - [`Request`] and [`Response`]: one variant per operation ([`Operation`]), holding that
//!   operation's input or output struct (`PutRecordsInput`, `PutRecordsOutput`, ...). The
//!   structs mirror botocore's Kinesis shapes member for member, and serde reads and writes
//!   them with AWS's member names, so `serde_json` over a `PutRecordsInput` *is* the AWS JSON
//!   body (blobs base64, timestamps epoch seconds) and `ciborium` the AWS CBOR one (byte
//!   strings, tag-1 epoch milliseconds).
//! - Identifiers ([`ids`]): [`ShardId`], [`SequenceNumber`], [`HashKey`], [`StreamArn`],
//!   [`ConsumerArn`], [`Timestamp`], each its own type.
//! - [`Identity`]: the region and account a server answers as, passed as a value.
//! - [`KinesisError`]: an AWS exception ([`ErrorKind`]) and its message, every message built
//!   by one function per failure.
//! - [`Request::validate`]: the checks every request passes whatever its protocol;
//!   [`Request::iam_checks`]: the IAM actions and resources an authorizer checks.
//! - [`limits`]: the API's own limits.
//! - [`firehose`]: the Firehose API's requests and answers, for the native protocol.
//! - [`routes`]: DescribeStreamRoutes, the routing table a client of a cluster writes by.
//!
//! Pure: no I/O, no runtime. The wire codecs (native flatbuffers, AWS JSON and CBOR, event
//! streams) are in `sluice-protocol`; the server and the clients use both crates.

pub mod enums;
pub mod error;
pub mod firehose;
pub mod iam;
pub mod identity;
pub mod ids;
pub mod leases;
pub mod limits;
pub mod operations;
pub mod queues;
pub mod routes;
pub mod settings;
pub mod shapes;
mod validate;

pub use enums::*;
pub use error::{ErrorKind, KinesisError, Violation, Violations};
pub use firehose::*;
pub use iam::{IamCheck, IamResource};
pub use identity::{ApplicationName, ConsumerName, Identity, IdentityError, Resource};
pub use ids::{ConsumerArn, HashKey, ParseIdError, ResourceArn, SequenceNumber, ShardId, StreamArn, Timestamp};
pub use leases::*;
pub use operations::*;
pub use queues::*;
pub use routes::*;
pub use settings::*;
pub use shapes::*;
