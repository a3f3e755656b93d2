//! The Kinesis operations, run on the cores: one dispatch ([`dispatch::execute`]) from a model
//! `Request` to a model `Response`, whichever protocol the request came by.
//!
//! - [`node`]: one core's context ([`node::Node`]), composed of the features' own state
//!   ([`state`]).
//! - [`dispatch`]: validation, the authorization check, and the call of each operation.
//! - [`observe`]: what requests and subscriptions tell the metrics; a core's figures for a scrape.
//! - [`auth`]: who is calling, and the one place a caller is checked.
//! - [`audit`]: the audit log's entry for each call of an authenticated caller.
//! - [`catalog`]: changes to the catalog on core 0: persist, prepare every core, publish.
//! - [`streams`], [`consumers`]: the control plane's operations; [`settings`]: a stream's
//!   record size, distribution strategy and warm throughput, and the account's settings.
//! - [`records`]: PutRecord(s), GetShardIterator, GetRecords, and each shard's quotas.
//! - [`routes`]: DescribeStreamRoutes, the routing table a client of a cluster writes by.
//! - [`subscriptions`]: SubscribeToShard's pushes.
//! - [`reshard`]: SplitShard, MergeShards and UpdateShardCount as state machines on core 0.
//! - [`on_demand`]: the scaler of ON_DEMAND streams, on core 0.
//! - [`firehose`]: delivery streams: definitions, the delivery runtime, readers, checkpoints;
//!   [`firehose_calls`]: the Firehose operations, authorized and run, for both protocols;
//!   [`firehose_bodies`]: their requests checked as AWS checks them (and their JSON bodies);
//!   [`glue`]: the AWS Glue Data Catalog (`AWSGlue.*`) Parquet conversion reads tables from.
//! - [`delivery`]: the delivery state (consumer-group leases) in core 0's internal shard;
//!   [`leases`]: Sluice's lease operations on it; [`queues`]: the Kinesis queue operations on it.
//!
//! Layer: imports `runtime`, `control`, `kinesis`, `metrics` and `limits`; `net` and `daemon` import it.

pub mod audit;
pub mod auth;
pub mod catalog;
#[cfg(feature = "firehose")]
pub mod channels;
pub mod cluster;
pub mod consumers;
pub mod delivery;
pub mod dispatch;
pub mod encryption;
#[cfg(feature = "firehose")]
pub mod firehose;
#[cfg(feature = "firehose")]
pub mod firehose_bodies;
#[cfg(feature = "firehose")]
pub mod firehose_calls;
#[cfg(feature = "firehose")]
pub mod glue;
pub mod leases;
pub mod node;
pub mod observe;
pub mod on_demand;
pub mod queues;
pub mod records;
pub mod reshard;
pub mod routes;
pub mod sealing;
pub mod settings;
pub mod state;
pub mod streams;
pub mod subscriptions;
