//! The Kinesis operations, run on the cores: one dispatch ([`dispatch::execute`]) from a model
//! `Request` to a model `Response`, whichever protocol the request came by.
//!
//! - [`node`]: one core's context ([`node::Node`]), composed of the features' own state
//!   ([`state`]).
//! - [`dispatch`]: validation, the authorization check, and the call of each operation.
//! - [`observe`]: what requests and subscriptions tell the metrics; a core's figures for a scrape.
//! - [`auth`]: who is calling, and the one place a caller is checked.
//! - [`catalog`]: changes to the catalog on core 0: persist, prepare every core, publish.
//! - [`streams`], [`consumers`]: the control plane's operations.
//! - [`records`]: PutRecord(s), GetShardIterator, GetRecords, and each shard's quotas.
//! - [`subscriptions`]: SubscribeToShard's pushes.
//! - [`reshard`]: SplitShard, MergeShards and UpdateShardCount as state machines on core 0.
//! - [`on_demand`]: the scaler of ON_DEMAND streams, on core 0.
//!
//! Layer: imports `runtime`, `control`, `kinesis`, `metrics` and `limits`; `net` and `daemon` import it.

pub mod auth;
pub mod catalog;
pub mod consumers;
pub mod dispatch;
pub mod node;
pub mod observe;
pub mod on_demand;
pub mod records;
pub mod reshard;
pub mod state;
pub mod streams;
pub mod subscriptions;
