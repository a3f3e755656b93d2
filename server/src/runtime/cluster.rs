//! Cluster membership as configured (`--node-id`, `--peers`): who this node is, where every
//! member's cores listen for their peers, and (optionally) where each member serves clients,
//! so a follower can forward a request to the leader. Without it a node runs alone, as it
//! always did. Also [`LeaderTable`]: which member leads each group, as this node last saw it.

use arc_swap::ArcSwap;
use sluice_engine::catalog::CatalogMember;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// The largest node id: DescribeStreamRoutes names members by id over HTTP too, as JSON
/// numbers (`sluice_model::routes::NODE_ID_MAX`).
pub use sluice_model::routes::NODE_ID_MAX;

/// A replicated node's configuration. Each core `c` of a member listens for the same core of
/// its peers on the member's port plus `c` (a shard lives on the same core index on every
/// node, so one core's groups talk only to that core on the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id (not 0), one of `members`.
    pub node_id: u64,
    /// Every member, this node included, by id.
    pub members: BTreeMap<u64, Member>,
    /// Bytes of each group's Raft log segment (`--raft-segment-bytes`).
    pub segment_bytes: usize,
    /// `--join`: this node is new to a running cluster, which adds it with an admin call
    /// (`ReplaceClusterMember`); it founds no group and starts each from a snapshot.
    pub joining: bool,
}

/// Where one member listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its core 0's peer (Raft) address.
    pub peer: SocketAddr,
    /// Its native protocol listener (`--listen`), if configured: requests are forwarded there.
    pub native: Option<SocketAddr>,
    /// Its HTTP listener (`--http-listen`), if configured: named to clients in errors.
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterConfigError {
    #[error("peer `{0}` is not ID=HOST:PORT[/native@HOST:PORT][/http@HOST:PORT]")]
    Shape(String),
    #[error("peer id `{0}` is not a number from 1 to {NODE_ID_MAX}")]
    Id(String),
    #[error("peer id {0} is given twice")]
    Duplicate(u64),
    #[error("peer address `{0}` is not HOST:PORT (an IP address and a port)")]
    Address(String),
    #[error("peer {id}: `{part}` is not one of raft@, native@, http@ followed by HOST:PORT")]
    Part { id: u64, part: String },
    #[error("peer {id}: its {kind} address is given twice")]
    PartTwice { id: u64, kind: &'static str },
    #[error("peer {0}: no raft address (the first part, `HOST:PORT` or `raft@HOST:PORT`)")]
    NoRaftAddress(u64),
    #[error("node id {0} is not one of the peers")]
    NotAMember(u64),
    #[error("a node id needs peers, and peers a node id")]
    Incomplete,
    #[error("peer port {port} plus {cores} cores passes 65535")]
    PortRange { port: u16, cores: usize },
}

impl ClusterConfig {
    /// From `--node-id` and `--peers`; neither given is single-node mode. A member is
    /// `ID=HOST:PORT` (its Raft address, as before client addresses existed), optionally
    /// followed by `/native@HOST:PORT` and `/http@HOST:PORT` (its client listeners); the Raft
    /// address may be spelled `raft@HOST:PORT` too.
    pub fn parse(
        node_id: Option<u64>,
        peers: Option<&str>,
        cores: usize,
    ) -> Result<Option<ClusterConfig>, ClusterConfigError> {
        let (node_id, peers) = match (node_id, peers) {
            (None, None) => return Ok(None),
            (Some(node_id), Some(peers)) => (node_id, peers),
            _ => return Err(ClusterConfigError::Incomplete),
        };
        let mut members = BTreeMap::new();
        for member in peers.split(',').map(str::trim).filter(|member| !member.is_empty()) {
            let (id, addresses) = member.split_once('=').ok_or_else(|| ClusterConfigError::Shape(member.into()))?;
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| (1..=NODE_ID_MAX).contains(id))
                .ok_or_else(|| ClusterConfigError::Id(id.into()))?;
            let member = parse_member(id, addresses)?;
            if usize::from(member.peer.port()) + cores > usize::from(u16::MAX) + 1 {
                return Err(ClusterConfigError::PortRange { port: member.peer.port(), cores });
            }
            if members.insert(id, member).is_some() {
                return Err(ClusterConfigError::Duplicate(id));
            }
        }
        if !members.contains_key(&node_id) {
            return Err(ClusterConfigError::NotAMember(node_id));
        }
        Ok(Some(ClusterConfig {
            node_id,
            members,
            segment_bytes: sluice_cluster::limits::LOG_SEGMENT_BYTES,
            joining: false,
        }))
    }

    /// The members now: the catalog's once an admin call changed them (`routes.members`),
    /// else the ones `--peers` names.
    pub fn members_now(&self, catalog: Option<&BTreeMap<u64, CatalogMember>>) -> BTreeMap<u64, Member> {
        match catalog {
            None => self.members.clone(),
            Some(members) => members
                .iter()
                .map(|(&id, member)| (id, Member { peer: member.peer, native: member.native, http: member.http }))
                .collect(),
        }
    }

    /// The members a new group of shard `shard_uid` (`None`: the catalog's group) starts with
    /// on this node: empty where this node joins it (it is sent a snapshot), as a node started
    /// with `--join` does every group older than its membership.
    pub fn founders(&self, catalog: Option<&BTreeMap<u64, CatalogMember>>, shard_uid: Option<u64>) -> Vec<u64> {
        match (catalog, shard_uid) {
            (None, _) | (Some(_), None) if self.joining => Vec::new(),
            (None, _) | (Some(_), None) => self.members.keys().copied().collect(),
            (Some(members), Some(uid)) => match members.get(&self.node_id) {
                Some(own) if own.first_shard_uid <= uid => {
                    members.iter().filter(|(_, member)| member.first_shard_uid <= uid).map(|(&id, _)| id).collect()
                }
                _ => Vec::new(),
            },
        }
    }
}

/// Where core `core` of each of `members` listens for its peers.
pub fn core_addresses(members: &BTreeMap<u64, Member>, core: usize) -> BTreeMap<u64, SocketAddr> {
    members
        .iter()
        .map(|(&id, member)| {
            let mut address = member.peer;
            address.set_port(address.port() + core as u16);
            (id, address)
        })
        .collect()
}

/// One member's `HOST:PORT[/native@HOST:PORT][/http@HOST:PORT]`.
fn parse_member(id: u64, addresses: &str) -> Result<Member, ClusterConfigError> {
    let address = |text: &str| -> Result<SocketAddr, ClusterConfigError> {
        text.trim().parse().map_err(|_| ClusterConfigError::Address(text.trim().into()))
    };
    let (mut peer, mut native, mut http) = (None, None, None);
    for (position, part) in addresses.split('/').map(str::trim).enumerate() {
        let (kind, slot, text) = match part.split_once('@') {
            Some(("raft", text)) => ("raft", &mut peer, text),
            Some(("native", text)) => ("native", &mut native, text),
            Some(("http", text)) => ("http", &mut http, text),
            None if position == 0 => ("raft", &mut peer, part),
            _ => return Err(ClusterConfigError::Part { id, part: part.into() }),
        };
        if slot.replace(address(text)?).is_some() {
            return Err(ClusterConfigError::PartTwice { id, kind });
        }
    }
    let peer = peer.ok_or(ClusterConfigError::NoRaftAddress(id))?;
    Ok(Member { peer, native, http })
}

/// Which member leads each group (by group id: 0 the catalog, else the shard's uid), as the
/// cores hosting the groups last published it (`ops::cluster`, on each change of leader and
/// each tick). Read by every core when it decides whether to forward a request, without a
/// lock or a cross-core hop; a stale answer costs one retriable error, never a wrong write
/// (the leader's Raft group is what accepts or refuses it).
#[derive(Default)]
pub struct LeaderTable {
    leaders: ArcSwap<HashMap<u64, Seen>>,
}

/// What the table knows of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The leader now (0: none known).
    leader: u64,
    /// Whether the group has had a leader since this node started hosting it.
    elected: bool,
}

impl LeaderTable {
    /// The leader of `group` (`None`: unknown, an election is under way or the group is not
    /// hosted here).
    pub fn leader(&self, group: u64) -> Option<u64> {
        self.leaders.load().get(&group).map(|seen| seen.leader).filter(|&leader| leader != 0)
    }

    /// Whether `group` has had a leader since this node started hosting it: false only for a
    /// group still in its first election here (a new stream's or a new child shard's), not
    /// for one that lost its leader later.
    pub fn elected(&self, group: u64) -> bool {
        self.leaders.load().get(&group).is_some_and(|seen| seen.elected)
    }

    /// Records what a core sees: `(group, leader)` pairs (leader 0: none known), and the
    /// groups it no longer hosts (`gone`: a deleted stream's shards), which the table forgets.
    /// Replaces the table only if something changed.
    pub fn publish(&self, seen: &[(u64, u64)], gone: &[u64]) {
        let current = self.leaders.load();
        let unchanged = seen.iter().all(|(group, leader)| current.get(group).map(|seen| seen.leader) == Some(*leader));
        if unchanged && !gone.iter().any(|group| current.contains_key(group)) {
            return;
        }
        self.leaders.rcu(|table| {
            let mut table = HashMap::clone(table);
            for group in gone {
                table.remove(group);
            }
            for &(group, leader) in seen {
                let elected = leader != 0 || table.get(&group).is_some_and(|seen| seen.elected);
                table.insert(group, Seen { leader, elected });
            }
            table
        });
    }
}

impl LeaderTable {
    /// How many groups each member leads, as far as this node knows, leaving out the groups
    /// `except` (the metadata and delivery groups, which leader balancing leaves alone: counted,
    /// a member leading one looked as if it led a shard more, and the members stopped one
    /// shard short of even). Groups with no leader known count for no one.
    pub fn leader_counts(&self, except: &[u64]) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for (&group, seen) in self.leaders.load().iter() {
            if !except.contains(&group) && seen.leader != 0 {
                *counts.entry(seen.leader).or_default() += 1;
            }
        }
        counts
    }
}

impl std::fmt::Debug for LeaderTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.leaders.load().iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_elected_once_it_had_a_leader_and_stays_so_through_a_failover() {
        let table = LeaderTable::default();
        assert!(!table.elected(7), "a group the table never saw");
        table.publish(&[(7, 0)], &[]);
        assert!(!table.elected(7) && table.leader(7).is_none(), "the first election");
        table.publish(&[(7, 2)], &[]);
        assert!(table.elected(7) && table.leader(7) == Some(2));
        table.publish(&[(7, 0), (8, 0)], &[]);
        assert!(table.elected(7) && table.leader(7).is_none(), "a failover: no leader, still elected once");
        assert!(!table.elected(8));
    }

    #[test]
    fn leader_counts_leave_out_the_groups_named_and_those_without_a_leader() {
        let table = LeaderTable::default();
        // The catalog's group (0) and the delivery state's (u64::MAX), both led by node 1.
        table.publish(&[(0, 1), (u64::MAX, 1), (5, 1), (6, 2), (7, 2), (8, 0)], &[]);
        assert_eq!(table.leader_counts(&[0, u64::MAX]), HashMap::from([(1, 1), (2, 2)]));
        assert_eq!(table.leader_counts(&[0]), HashMap::from([(1, 2), (2, 2)]));
    }

    /// A deleted stream's groups are forgotten: counted, their last leaders looked as if they
    /// led more than they did, and leader balancing stopped short of even (CI saw members
    /// leading [10, 15, 13] shard groups for a minute after a stream was deleted).
    #[test]
    fn a_group_no_longer_hosted_is_forgotten() {
        let table = LeaderTable::default();
        table.publish(&[(5, 1), (6, 2), (7, 2)], &[]);
        table.publish(&[(5, 1)], &[6, 7]);
        assert_eq!(table.leader_counts(&[]), HashMap::from([(1, 1)]));
        assert_eq!(table.leader(6), None);
        assert!(!table.elected(7));
    }

    #[test]
    fn peers_parse_and_each_core_gets_its_port() {
        let config = ClusterConfig::parse(Some(2), Some("1=127.0.0.1:7000, 2=127.0.0.1:7100,3=127.0.0.1:7200"), 2)
            .unwrap()
            .unwrap();
        assert_eq!(config.founders(None, Some(9)), vec![1, 2, 3]);
        assert_eq!(core_addresses(&config.members, 1)[&2], "127.0.0.1:7101".parse().unwrap());
        assert_eq!(config.members[&1].native, None);
        assert_eq!(ClusterConfig::parse(None, None, 2), Ok(None));
    }

    #[test]
    fn client_addresses_parse_in_any_order() {
        let peers = "1=127.0.0.1:7000/native@127.0.0.1:4568/http@127.0.0.1:4567,\
                     2=raft@10.0.0.2:7000/http@10.0.0.2:4567, 3=[::1]:7000/native@[::1]:4568";
        let config = ClusterConfig::parse(Some(1), Some(peers), 1).unwrap().unwrap();
        let at = |text: &str| Some(text.parse::<SocketAddr>().unwrap());
        assert_eq!(
            config.members[&1],
            Member {
                peer: "127.0.0.1:7000".parse().unwrap(),
                native: at("127.0.0.1:4568"),
                http: at("127.0.0.1:4567")
            }
        );
        assert_eq!(config.members[&2].peer, "10.0.0.2:7000".parse().unwrap());
        assert_eq!((config.members[&2].native, config.members[&2].http), (None, at("10.0.0.2:4567")));
        assert_eq!((config.members[&3].native, config.members[&3].http), (at("[::1]:4568"), None));
    }

    #[test]
    fn bad_peers_are_refused() {
        let check = |node_id, peers: &str, error| assert_eq!(ClusterConfig::parse(node_id, Some(peers), 2), Err(error));
        check(Some(1), "1=127.0.0.1:7000,1=127.0.0.1:7001", ClusterConfigError::Duplicate(1));
        check(Some(1), "0=127.0.0.1:7000", ClusterConfigError::Id("0".into()));
        check(Some(1), "9007199254740992=127.0.0.1:7000", ClusterConfigError::Id("9007199254740992".into()));
        check(Some(4), "1=127.0.0.1:7000", ClusterConfigError::NotAMember(4));
        check(Some(1), "1:127.0.0.1:7000", ClusterConfigError::Shape("1:127.0.0.1:7000".into()));
        check(Some(1), "1=localhost:7000", ClusterConfigError::Address("localhost:7000".into()));
        check(Some(1), "1=127.0.0.1:65535", ClusterConfigError::PortRange { port: 65535, cores: 2 });
        check(
            Some(1),
            "1=127.0.0.1:7000/grpc@127.0.0.1:1",
            ClusterConfigError::Part { id: 1, part: "grpc@127.0.0.1:1".into() },
        );
        check(
            Some(1),
            "1=127.0.0.1:7000/127.0.0.1:7001",
            ClusterConfigError::Part { id: 1, part: "127.0.0.1:7001".into() },
        );
        check(
            Some(1),
            "1=127.0.0.1:7000/native@127.0.0.1:1/native@127.0.0.1:2",
            ClusterConfigError::PartTwice { id: 1, kind: "native" },
        );
        check(Some(1), "1=127.0.0.1:7000/raft@127.0.0.1:7001", ClusterConfigError::PartTwice { id: 1, kind: "raft" });
        check(Some(1), "1=native@127.0.0.1:4568", ClusterConfigError::NoRaftAddress(1));
        check(Some(1), "1=127.0.0.1:7000/http@nowhere", ClusterConfigError::Address("nowhere".into()));
        assert_eq!(ClusterConfig::parse(Some(1), None, 2), Err(ClusterConfigError::Incomplete));
    }

    #[test]
    fn the_leader_table_keeps_what_cores_publish() {
        let table = LeaderTable::default();
        assert_eq!(table.leader(0), None);
        table.publish(&[(0, 2), (7, 0)], &[]);
        assert_eq!((table.leader(0), table.leader(7)), (Some(2), None));
        table.publish(&[(7, 3)], &[]);
        assert_eq!((table.leader(0), table.leader(7)), (Some(2), Some(3)));
    }
}
