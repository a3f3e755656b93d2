//! Sluice's routing table (issue 13): DescribeStreamRoutes, a Sluice-only operation (served
//! under the `Sluice_20261201` target prefix, like the lease operations) that tells a client
//! which member of a cluster leads each open shard of a stream and where that member's
//! native listener is, so that a client can send each write straight to the shard's leader
//! instead of through a node that forwards it (as Kafka clients use metadata).
//!
//! It needs what DescribeStream needs, `kinesis:DescribeStream` on the stream
//! ([`crate::Operation::iam_action`]): it tells no more than DescribeStream does, plus who
//! leads, and an IAM action of its own would be one no AWS policy knows.
//!
//! A table can be stale the moment it is sent: leaders change on failover and rebalancing,
//! shards on a reshard. A client never needs it to be right, since every node takes every
//! write (forwarding it when it does not lead); a stale entry costs one forward or one
//! retriable error. [`DescribeStreamRoutesOutput::node_id`] and the members' addresses let a
//! client see which node's view it holds, and `stream_creation_timestamp` tells a stream
//! deleted and created again under the same name from the one the table described.

use crate::ids::{ShardId, StreamArn, Timestamp};
use crate::shapes::HashKeyRange;
use serde::{Deserialize, Serialize};

/// DescribeStreamRoutes' input: the stream, by name or ARN.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamRoutesInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<StreamArn>,
}

/// The routing table of one stream, as the node that answered knows it.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamRoutesOutput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: StreamArn,
    pub stream_creation_timestamp: Timestamp,
    /// The node that answered: its `--node-id`, or [`SINGLE_NODE_ID`] for a node alone.
    pub node_id: u64,
    /// Every member, the answering node included.
    pub members: Vec<RouteMember>,
    /// The stream's open shards (the ones writes go to), by the start of their range.
    pub shards: Vec<ShardRoute>,
}

/// The node id a node alone (no `--node-id`) answers with: cluster members are numbered from 1.
pub const SINGLE_NODE_ID: u64 = 0;

/// The largest node id (2^53 - 1): ids travel as JSON numbers over HTTP, which hold no larger
/// integer exactly; `sluiced` refuses a larger `--node-id` or peer id.
pub const NODE_ID_MAX: u64 = (1 << 53) - 1;

/// One member of the cluster.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteMember {
    pub node_id: u64,
    /// Its native protocol listener, `HOST:PORT` as `--peers` gives it (`/native@HOST:PORT`).
    /// Absent when it has none configured, and for a node alone, whose address is the one the
    /// client reached it at.
    pub native_address: Option<String>,
}

/// One open shard and who leads it.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardRoute {
    pub shard_id: ShardId,
    pub hash_key_range: HashKeyRange,
    /// The member leading the shard's group as the answering node last saw it; absent while
    /// it knows none (an election in progress).
    pub leader_node_id: Option<u64>,
}
