//! The cluster's membership on a replicated node (issue 13, `docs/cluster.md`, "Restarting and
//! replacing a node"): admin calls ([`change_members`]) replace one member by a new node
//! (`ReplaceClusterMember`), add a new node (`AddClusterMember`) or remove a member
//! (`RemoveClusterMember`) in every group, the catalog's and each shard's.
//!
//! 1. The call is a catalog command ([`MetaCommand::ReplaceMember`], `AddMember`,
//!    `RemoveMember`): once committed, every node's catalog names the members, with each one's
//!    addresses and the first shard uid whose group it founded (a later shard's group starts
//!    with every member; an older one's a new member joins). Until the first such call the
//!    members are `--peers`'.
//! 2. On every core of every member, [`keep`] follows the catalog: the peer network dials a
//!    new member (and no longer one that left), and each group this member leads proposes the
//!    change of its membership to raft-rs (`ConfChangeV2`, every addition and removal at once:
//!    raft-rs passes through a joint membership, in which the old and the new majorities both
//!    decide, and leaves it by itself), again until the group's membership is the catalog's.
//!    A leader that is itself leaving hands its groups to a member staying first.
//! 3. A new node runs with `--join`: it founds no group, and a leader sends each group a
//!    snapshot (`sluice_cluster::replica`, `seeded`): the catalog's is restored by copying a
//!    peer's catalog ([`restorer`]), after which the node opens every stream's shards and
//!    their groups; each shard's is restored by copying its records (`snapshot`).
//!
//! Unfinished: every member hosts every group (the replication factor is the member count).
//! With `--credentials`, a new member whose id is past `FORWARDING_MEMBER_IDS_DERIVED` cannot
//! forward to the members started before it joined (the keys members authenticate each other
//! with are derived at start-up).

use crate::control::members::Change;
pub use crate::control::members::MemberAddresses;
use crate::ops::catalog;
use crate::ops::cluster::meta::{self, MetaCommand};
use crate::ops::cluster::{core_addresses, ClusterCore, DELIVERY_GROUP, META_GROUP};
use crate::ops::node::Node;
use crate::runtime::cluster::{Member, NODE_ID_MAX};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde_json::{json, Value};
use sluice_cluster::eraftpb::{ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState};
use sluice_cluster::host::{GroupHost, Restorer};
use sluice_cluster::limits::TICK_INTERVAL_MS;
use sluice_cluster::replica::{Restored, SnapshotToRestore};
use sluice_cluster::transport::CopyRequest;
use sluice_cluster::wire::GroupId;
use sluice_engine::catalog::Catalog;
use sluice_model::KinesisError;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// How often each core compares its peers and its groups' memberships with the catalog's.
const KEEP_INTERVAL_MS: u64 = 500;

/// Bytes of the catalog one copy answer holds at most.
const CATALOG_PIECE_BYTES: u32 = 1 << 20;

/// A catalog copied in pieces that changed between two of them is copied again, this many
/// times at most before the snapshot is dropped (its leader sends another).
const CATALOG_COPY_ATTEMPTS: usize = 5;

/// `applied u64 | total u64` before a catalog piece's bytes.
const CATALOG_PIECE_HEADER_BYTES: usize = 16;

impl From<&Member> for MemberAddresses {
    fn from(member: &Member) -> MemberAddresses {
        MemberAddresses { peer: member.peer, native: member.native, http: member.http }
    }
}

/// ReplaceClusterMember, AddClusterMember and RemoveClusterMember: member `leaving` leaves
/// every group, node `joining` (started with `--join`, at its addresses) joins every group, or
/// both at once. Answers once the catalog names the new members; the groups move after
/// (DescribeCluster shows when each is done).
pub async fn change_members(
    node: &Rc<Node>,
    leaving: Option<u64>,
    joining: Option<(u64, MemberAddresses)>,
) -> Result<(), KinesisError> {
    if node.shared.config.cluster.is_none() {
        return Err(KinesisError::invalid_argument("This node is not a member of a cluster (no --node-id, --peers)"));
    }
    let members = crate::ops::cluster::members(node);
    let wanted: Vec<u64> = members.keys().copied().collect();
    let change = Change { leaving, joining: joining.as_ref().map(|(new, member)| (*new, member)) };
    crate::control::members::check(&wanted, &change)?;
    if let Some((new, member)) = joining {
        if new == 0 || new > NODE_ID_MAX {
            return Err(KinesisError::invalid_argument(format!(
                "NewNodeId {new} is not a number from 1 to {NODE_ID_MAX}"
            )));
        }
        // The members forward clients' requests to each other's native listeners: one they
        // could not reach there would fail the requests for every shard it comes to lead.
        let forwarding =
            members.iter().filter(|(id, _)| Some(**id) != leaving).all(|(_, other)| other.native.is_some());
        if forwarding && member.native.is_none() {
            return Err(KinesisError::invalid_argument(format!(
                "NativeAddress of node {new} is required: the members forward clients' requests to each other's \
                 native listeners, and could not to node {new}'s"
            )));
        }
        for (id, other) in &members {
            let taken = [Some(other.peer), other.native, other.http];
            let wanted = [Some(member.peer), member.native, member.http];
            if Some(*id) != leaving && wanted.iter().flatten().any(|address| taken.contains(&Some(*address))) {
                return Err(KinesisError::invalid_argument(format!(
                    "An address of node {new} is node {id}'s already ({})",
                    crate::ops::cluster::member_addresses(other)
                )));
            }
        }
    }
    // One change at a time: the groups of a second change would otherwise go through both at
    // once, which DescribeCluster could no longer tell apart. This node's groups stand for
    // the others' (every member hosts every group); the catalog's leader, which answers the
    // call, applied the last change first. Core 0 checks and proposes one call at a time, so
    // a second call finds the first's command applied and the groups not settled on it.
    let before = members.iter().map(|(&id, member)| (id, MemberAddresses::from(member))).collect();
    let command = match (leaving, joining) {
        (Some(old), Some((new, member))) => MetaCommand::ReplaceMember { old, new, member, before },
        (None, Some((new, member))) => MetaCommand::AddMember { new, member, before },
        (Some(old), None) => MetaCommand::RemoveMember { old, before },
        (None, None) => return Ok(()),
    };
    node.run_on(0, move |core0| async move {
        let Some(group) = crate::ops::cluster::core().and_then(|core| core.meta()) else {
            return Err(KinesisError::internal("the metadata group is not running on core 0"));
        };
        let Some(_change) = group.change_members() else {
            return Err(KinesisError::resource_in_use(
                "Another change of the cluster's members is under way on this node. Call again once \
                 DescribeCluster says Settled",
            ));
        };
        one_change_at_a_time(&groups(&core0).await?, &wanted)?;
        meta::propose(&core0, command).await?;
        Ok(())
    })
    .await?
}

/// The groups this node hosts, on every core, by name (`catalog`, `shard-UID`), each with its
/// leader as this node knows it and its membership.
async fn groups(node: &Rc<Node>) -> Result<Vec<(String, u64, ConfState)>, KinesisError> {
    let mut groups = Vec::new();
    for core in 0..node.shared.config.cores {
        let found = node
            .run_on(core, |_node| async move {
                let Some(cluster) = crate::ops::cluster::core() else { return Vec::new() };
                let name = |uid: u64| match GroupId(uid) {
                    META_GROUP => "catalog".to_string(),
                    DELIVERY_GROUP => "delivery".to_string(),
                    _ => format!("shard-{uid}"),
                };
                let hosts = cluster.hosts().into_iter();
                hosts.map(|(uid, host)| (name(uid), host.leader(), host.membership())).collect::<Vec<_>>()
            })
            .await?;
        groups.extend(found);
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(groups)
}

/// Refuses a membership change while any of `groups` has not finished the last one (its
/// voters are not exactly `wanted`, the members the catalog names now).
fn one_change_at_a_time(groups: &[(String, u64, ConfState)], wanted: &[u64]) -> Result<(), KinesisError> {
    let unsettled: Vec<&str> =
        groups.iter().filter(|(_, _, conf)| !settled(conf, wanted)).map(|(name, _, _)| name.as_str()).collect();
    match unsettled.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(KinesisError::resource_in_use(format!(
            "The cluster's last membership change is under way: {} of this node's groups ({first}{}) do not have \
             exactly the members {wanted:?} as voters yet. Call again once DescribeCluster says Settled",
            unsettled.len(),
            if unsettled.len() > 1 { ", …" } else { "" },
        ))),
    }
}

/// DescribeCluster: the members, and each group this node hosts with its leader and its
/// membership; `Settled` once every one of them has exactly the members as voters.
pub async fn describe(node: &Rc<Node>) -> Result<Value, KinesisError> {
    let Some(config) = node.shared.config.cluster.clone() else {
        return Err(KinesisError::invalid_argument("This node is not a member of a cluster (no --node-id, --peers)"));
    };
    let members = crate::ops::cluster::members(node);
    let wanted: Vec<u64> = members.keys().copied().collect();
    let groups = groups(node).await?;
    let settled = groups.iter().all(|(_, _, conf)| settled(conf, &wanted));
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, leader, conf)| {
            json!({
                "Group": name,
                "Leader": leader,
                "Voters": conf.voters,
                "OutgoingVoters": conf.voters_outgoing,
                "Learners": conf.learners,
            })
        })
        .collect();
    let members: Vec<Value> = members
        .iter()
        .map(|(id, member)| {
            json!({
                "NodeId": id,
                "PeerAddress": member.peer.to_string(),
                "NativeAddress": member.native.map(|address| address.to_string()),
                "HttpAddress": member.http.map(|address| address.to_string()),
            })
        })
        .collect();
    Ok(json!({ "NodeId": config.node_id, "Members": members, "Groups": groups, "Settled": settled }))
}

/// Whether a group's membership is exactly `wanted`, with no change under way.
fn settled(conf: &ConfState, wanted: &[u64]) -> bool {
    let mut voters = conf.voters.clone();
    voters.sort_unstable();
    conf.voters_outgoing.is_empty() && conf.learners.is_empty() && voters == wanted
}

/// On every core of a replicated node, for the executor's life: brings the peer network and
/// the groups this member leads to the catalog's membership (see the module doc).
pub async fn keep(node: Rc<Node>, core: Rc<ClusterCore>) {
    let node_id = core.config.node_id;
    // Groups that have not taken the news of a membership change yet (a full inbox).
    let mut untold: HashSet<u64> = HashSet::new();
    loop {
        glommio::timer::sleep(Duration::from_millis(KEEP_INTERVAL_MS)).await;
        let members = crate::ops::cluster::members(&node);
        let changed = *core.peers_now.borrow() != members;
        if changed {
            let peers = |members: &BTreeMap<u64, Member>| {
                let mut addresses = core_addresses(members, core.core);
                addresses.remove(&node_id);
                addresses
            };
            let previous = peers(&core.peers_now.borrow());
            core.network.set_peers(&peers(&members), &previous);
            *core.peers_now.borrow_mut() = members.clone();
            untold = core.hosts().into_iter().map(|(uid, _)| uid).collect();
            tracing::info!(core = core.core, members = ?members.keys().collect::<Vec<_>>(), "replication: the cluster's members changed");
        }
        let allowed: BTreeSet<u64> = members.keys().chain(core.config.members.keys()).copied().collect();
        let allowed: Vec<u64> = allowed.into_iter().collect();
        let wanted: Vec<u64> = members.keys().copied().collect();
        for (uid, host) in core.hosts() {
            if untold.contains(&uid) && host.set_members(allowed.clone()) {
                untold.remove(&uid);
            }
            if host.leader() == node_id {
                lead_towards(&core, &host, &wanted);
            }
        }
    }
}

/// On the leader of a group: proposes the change that makes its voters `wanted`, unless one is
/// under way; a leader that is not among `wanted` hands the group to a member that is.
fn lead_towards(core: &ClusterCore, host: &GroupHost, wanted: &[u64]) {
    let conf = host.membership();
    if conf.voters.is_empty() || settled(&conf, wanted) || !conf.voters_outgoing.is_empty() || !conf.learners.is_empty()
    {
        return;
    }
    let node_id = core.config.node_id;
    if !wanted.contains(&node_id) {
        let staying = wanted.iter().copied().filter(|member| conf.voters.contains(member));
        if let Some(to) = staying.into_iter().find(|&member| core.reaches(member)) {
            host.transfer_leader(to);
        }
        return;
    }
    host.change_membership(change_towards(&conf.voters, wanted));
}

/// The conf change from `voters` to `wanted`: every addition and removal at once, which
/// raft-rs passes through a joint membership and leaves by itself (`Auto`).
fn change_towards(voters: &[u64], wanted: &[u64]) -> ConfChangeV2 {
    let single = |change_type: ConfChangeType, node_id: u64| ConfChangeSingle {
        change_type,
        node_id,
        ..ConfChangeSingle::default()
    };
    let added = wanted.iter().filter(|id| !voters.contains(id)).map(|&id| single(ConfChangeType::AddNode, id));
    let removed = voters.iter().filter(|id| !wanted.contains(id)).map(|&id| single(ConfChangeType::RemoveNode, id));
    ConfChangeV2 {
        changes: added.chain(removed).collect(),
        transition: ConfChangeTransition::Auto,
        ..ConfChangeV2::default()
    }
}

/// A peer's copy request for the catalog, on core 0: the catalog as this node holds it, as
/// JSON from byte `request.from` on, after the index of the last catalog command applied.
pub fn catalog_piece(core0: &Node, request: &CopyRequest) -> Bytes {
    let applied = crate::ops::cluster::core().and_then(|core| core.meta()).map_or(0, |meta| meta.applied_index());
    let json = core0.catalog.as_ref().map(|owner| serde_json::to_vec(&*owner.catalog.borrow()).unwrap_or_default());
    let json = json.unwrap_or_default();
    let from = (request.from as usize).min(json.len());
    let length = (json.len() - from).min(request.bytes_max.min(CATALOG_PIECE_BYTES) as usize);
    let mut piece = BytesMut::with_capacity(CATALOG_PIECE_HEADER_BYTES + length);
    piece.put_u64_le(applied);
    piece.put_u64_le(json.len() as u64);
    piece.put_slice(&json[from..from + length]);
    piece.freeze()
}

/// One piece of a peer's catalog: (applied, total bytes, these bytes), or why it is not one.
fn decode_catalog_piece(mut piece: Bytes) -> Result<(u64, u64, Bytes), String> {
    if piece.len() < CATALOG_PIECE_HEADER_BYTES {
        return Err(format!("a catalog piece of {} bytes", piece.len()));
    }
    let applied = piece.get_u64_le();
    let total = piece.get_u64_le();
    Ok((applied, total, piece))
}

/// What the catalog's group restores a snapshot with: a copy of the sender's catalog, at or
/// past the snapshot's index; the applier goes on after the copy's last command, so none is
/// applied again (`MetaGroup::installing`).
pub fn restorer(core0: Rc<Node>) -> Restorer {
    Rc::new(move |snapshot: SnapshotToRestore| {
        let node = core0.clone();
        Box::pin(async move {
            match restore_catalog(&node, &snapshot).await {
                Ok(applied) => {
                    tracing::info!(
                        entry = snapshot.index,
                        from = snapshot.from,
                        applied,
                        "replication: the catalog was copied from a peer"
                    );
                    Restored::Done
                }
                Err(why) => {
                    tracing::warn!(entry = snapshot.index, from = snapshot.from, %why, "replication: the catalog could not be copied; the leader sends another snapshot");
                    glommio::timer::sleep(Duration::from_millis(10 * TICK_INTERVAL_MS)).await;
                    Restored::Dropped
                }
            }
        })
    })
}

/// Copies the catalog from `snapshot.from`, installs it here and records it applied: the
/// index of the last command it holds.
async fn restore_catalog(core0: &Rc<Node>, snapshot: &SnapshotToRestore) -> Result<u64, String> {
    let core = crate::ops::cluster::core().ok_or("replication is not running on this core")?;
    let meta = core.meta().ok_or("the catalog's group is not running here")?;
    if meta.applied_index() >= snapshot.index {
        return Ok(meta.applied_index());
    }
    let (applied, json) = copy_catalog(&core, snapshot.from).await?;
    if applied < snapshot.index {
        return Err(format!(
            "node {} applied the catalog to entry {applied} only, short of {}",
            snapshot.from, snapshot.index
        ));
    }
    let copied: Catalog = serde_json::from_slice(&json).map_err(|error| format!("the copied catalog: {error}"))?;
    let cores = core0.shared.config.cores as u32;
    if copied.core_count != cores {
        return Err(format!(
            "the cluster's nodes run {} cores, this one {cores}: start it with --cores {}",
            copied.core_count, copied.core_count
        ));
    }
    let _installing = meta.installing().await?;
    if meta.applied_index() >= applied {
        // The applier got there while the copy was fetched.
        return Ok(meta.applied_index());
    }
    catalog::apply(core0, move |catalog, _, _| {
        *catalog = copied;
        Ok(())
    })
    .await
    .map_err(|error| error.to_string())?;
    meta.restored_to(core0, applied).await?;
    Ok(applied)
}

/// The whole catalog of `peer` as JSON, with the index it is applied to; pieces that do not
/// belong to one catalog (it changed in between) start the copy again.
async fn copy_catalog(core: &ClusterCore, peer: u64) -> Result<(u64, Vec<u8>), String> {
    for _ in 0..CATALOG_COPY_ATTEMPTS {
        let mut json = Vec::new();
        let mut first: Option<(u64, u64)> = None;
        loop {
            let answer = core.network.fetch(peer, META_GROUP, json.len() as u64, CATALOG_PIECE_BYTES).await;
            let answer = answer.ok_or_else(|| format!("node {peer} did not answer for the catalog"))?;
            let (applied, total, bytes) = decode_catalog_piece(answer)?;
            if first.is_some_and(|first| first != (applied, total)) {
                break;
            }
            first = Some((applied, total));
            if json.len() as u64 + bytes.len() as u64 > total || (bytes.is_empty() && (json.len() as u64) < total) {
                return Err(format!("node {peer} sent a catalog piece past its length {total}"));
            }
            json.extend_from_slice(&bytes);
            if json.len() as u64 == total {
                return Ok((applied, json));
            }
        }
    }
    Err(format!("node {peer}'s catalog changed during each of {CATALOG_COPY_ATTEMPTS} copies"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_adds_and_removes_at_once() {
        let change = change_towards(&[1, 2, 3], &[1, 2, 4]);
        let changes: Vec<(ConfChangeType, u64)> =
            change.changes.iter().map(|single| (single.change_type, single.node_id)).collect();
        assert_eq!(changes, vec![(ConfChangeType::AddNode, 4), (ConfChangeType::RemoveNode, 3)]);
        assert_eq!(change.transition, ConfChangeTransition::Auto);
        assert!(settled(&ConfState::from((vec![4, 1, 2], vec![])), &[1, 2, 4]));
        assert!(!settled(
            &ConfState { voters_outgoing: vec![3], ..ConfState::from((vec![1, 2, 4], vec![])) },
            &[1, 2, 4]
        ));
    }

    #[test]
    fn catalog_pieces_decode_or_are_refused() {
        let mut piece = BytesMut::new();
        piece.put_u64_le(9);
        piece.put_u64_le(3);
        piece.put_slice(b"{}x");
        assert_eq!(decode_catalog_piece(piece.freeze()), Ok((9, 3, Bytes::from_static(b"{}x"))));
        assert!(decode_catalog_piece(Bytes::from_static(&[1, 2, 3])).is_err());
    }

    #[test]
    fn a_change_is_refused_until_every_group_finished_the_last() {
        let group = |name: &str, conf: ConfState| (name.to_string(), 1, conf);
        let done = ConfState::from((vec![1, 2, 4], vec![]));
        let joint = ConfState { voters_outgoing: vec![1, 2, 3], ..done.clone() };
        let settled_groups = [group("catalog", done.clone()), group("shard-0", done.clone())];
        assert_eq!(one_change_at_a_time(&settled_groups, &[1, 2, 4]), Ok(()));
        // A group still in the joint membership, or still with the old voters.
        for conf in [joint, ConfState::from((vec![1, 2, 3], vec![]))] {
            let groups = [group("catalog", done.clone()), group("shard-7", conf)];
            let refused = one_change_at_a_time(&groups, &[1, 2, 4]).unwrap_err();
            assert_eq!(refused.kind, sluice_model::ErrorKind::ResourceInUse);
            assert!(refused.message.contains("(shard-7)"), "{}", refused.message);
        }
        // A group that has not learned its first membership yet counts as under way too.
        let groups = [group("shard-9", ConfState::default()), group("shard-10", ConfState::default())];
        let refused = one_change_at_a_time(&groups, &[1, 2, 4]).unwrap_err();
        assert!(refused.message.contains("2 of this node's groups (shard-9, …)"), "{}", refused.message);
    }
}
