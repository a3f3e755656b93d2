//! Delivery streams (Amazon Data Firehose's API shapes) and Kinesis channels for Sluice:
//! buffered, transformed, converted and compressed delivery of records to a local directory, to
//! S3-compatible object stores and to HTTP endpoints, with failed records kept in an error
//! output instead of lost.
//!
//! The crate is the delivery engine and the configuration; it knows nothing of sluiced's
//! journal or wire formats. sluiced runs it on a small tokio runtime of its own, off the ingest
//! path (its cores run glommio), and feeds each delivery stream an ordered source of records
//! through a bounded channel; the engine reports the position up to which everything is
//! delivered, which sluiced checkpoints (see [`engine`] for the contract).
//!
//! - [`config`]: `CreateDeliveryStream`'s shapes with AWS's names (serde); [`validate`]: AWS's
//!   ValidationException / InvalidArgumentException answers; [`channel`]: the Kinesis channel
//!   shapes.
//! - [`plan`]: a validated configuration resolved into what runs (buckets, functions, defaults).
//! - [`engine`]: buffers per destination and partition, processing, uploads, progress;
//!   [`source`]: the records it reads and the progress it reports; [`output`]: buffer limits
//!   and error output, which every destination has.
//! - [`transform`] (the Lambda hook), [`partition`] (jq keys), [`convert`] (JSON → Parquet),
//!   [`compress`], [`prefix`] (object naming), [`store`] (directory / object store),
//!   [`http_endpoint`], [`metrics`], [`limits`].
//! - [`glue`]: the AWS Glue Data Catalog's databases and tables (sluiced serves it), whose
//!   tables name the columns of Parquet conversion.
//! - `iceberg` (cargo feature `iceberg`): the Iceberg table destination of channels.

pub mod channel;
pub mod columns;
pub mod compress;
pub mod config;
pub mod convert;
pub mod engine;
pub mod error;
pub mod glue;
pub mod http_endpoint;
#[cfg(feature = "iceberg")]
pub mod iceberg;
pub mod limits;
pub mod metrics;
pub mod output;
pub mod partition;
pub mod plan;
pub mod prefix;
pub mod source;
pub mod store;
pub mod transform;
pub mod validate;

pub use engine::{spawn, spawn_checkpointed, Durable, Handle};
pub use error::{ApiError, DeliveryError, ErrorType};
pub use plan::{DeliveryPlan, EngineOptions, Environment};
pub use source::{Lane, Position, Progress, SourceRecord};
