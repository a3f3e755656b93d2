//! DescribeStreamRoutes (`sluice_model::routes`): the routing table of a stream as this node
//! knows it, for clients that send each write straight to its shard's leader
//! (`sluice_client::routed`).
//!
//! Read from what this node already holds, with no cross-core hop: the stream's open shards
//! from the routes snapshot, and who leads each from the node's
//! [`LeaderTable`](crate::runtime::cluster::LeaderTable) (which every core refreshes each Raft
//! tick; `ops/cluster/forward.rs` decides by the same table). A node alone answers with
//! itself ([`SINGLE_NODE_ID`], no address: the one the client used) as the leader of every
//! shard, so a client can ask whatever it talks to.

use crate::ops::node::Node;
use crate::ops::records::stream_route;
use sluice_model::{
    DescribeStreamRoutesInput, DescribeStreamRoutesOutput, HashKey, HashKeyRange, KinesisError, RouteMember, ShardId,
    ShardRoute, Timestamp, SINGLE_NODE_ID,
};

pub fn describe_stream_routes(
    node: &Node,
    input: DescribeStreamRoutesInput,
) -> Result<DescribeStreamRoutesOutput, KinesisError> {
    let route = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?;
    let meta = &route.meta;
    let cluster = node.shared.config.cluster.as_ref();
    let (node_id, members) = match cluster {
        Some(cluster) => {
            let members = crate::ops::cluster::members(node)
                .iter()
                .map(|(&node_id, member)| RouteMember {
                    node_id,
                    native_address: member.native.map(|address| address.to_string()),
                })
                .collect();
            (cluster.node_id, members)
        }
        None => (SINGLE_NODE_ID, vec![RouteMember { node_id: SINGLE_NODE_ID, native_address: None }]),
    };
    let mut open: Vec<_> = meta.shards.iter().filter(|shard| shard.is_open()).collect();
    open.sort_by_key(|shard| shard.hash_key_start);
    let shards = open
        .into_iter()
        .map(|shard| ShardRoute {
            shard_id: ShardId::from_number(shard.number),
            hash_key_range: HashKeyRange {
                starting_hash_key: HashKey(shard.hash_key_start),
                ending_hash_key: HashKey(shard.hash_key_end),
            },
            leader_node_id: match cluster {
                Some(_) => node.shared.leaders.leader(shard.uid),
                None => Some(SINGLE_NODE_ID),
            },
        })
        .collect();
    Ok(DescribeStreamRoutesOutput {
        stream_arn: node.identity().stream_arn(&meta.name),
        stream_creation_timestamp: Timestamp::from_epoch_ms(meta.created_ms),
        node_id,
        members,
        shards,
    })
}
