//! Cluster membership as configured (`--node-id`, `--peers`): who this node is and where every
//! member's cores listen for their peers. Without it a node runs alone, as it always did.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A replicated node's configuration. Each core `c` of a member listens for the same core of
/// its peers on the member's port plus `c` (a shard lives on the same core index on every
/// node, so one core's groups talk only to that core on the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id (not 0), one of `members`.
    pub node_id: u64,
    /// Every member, this node included: its id and its core 0's peer address.
    pub members: BTreeMap<u64, SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterConfigError {
    #[error("peer `{0}` is not ID=HOST:PORT")]
    Shape(String),
    #[error("peer id `{0}` is not a number above 0")]
    Id(String),
    #[error("peer id {0} is given twice")]
    Duplicate(u64),
    #[error("peer address `{0}` is not HOST:PORT (an IP address and a port)")]
    Address(String),
    #[error("node id {0} is not one of the peers")]
    NotAMember(u64),
    #[error("a node id needs peers, and peers a node id")]
    Incomplete,
    #[error("peer port {port} plus {cores} cores passes 65535")]
    PortRange { port: u16, cores: usize },
}

impl ClusterConfig {
    /// From `--node-id` and `--peers ID=HOST:PORT,...`; neither given is single-node mode.
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
            let (id, address) = member.split_once('=').ok_or_else(|| ClusterConfigError::Shape(member.into()))?;
            let id: u64 =
                id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| ClusterConfigError::Id(id.into()))?;
            let address: SocketAddr =
                address.trim().parse().map_err(|_| ClusterConfigError::Address(address.into()))?;
            if usize::from(address.port()) + cores > usize::from(u16::MAX) + 1 {
                return Err(ClusterConfigError::PortRange { port: address.port(), cores });
            }
            if members.insert(id, address).is_some() {
                return Err(ClusterConfigError::Duplicate(id));
            }
        }
        if !members.contains_key(&node_id) {
            return Err(ClusterConfigError::NotAMember(node_id));
        }
        Ok(Some(ClusterConfig { node_id, members }))
    }

    /// Where core `core` of every member listens for its peers.
    pub fn core_addresses(&self, core: usize) -> BTreeMap<u64, SocketAddr> {
        self.members
            .iter()
            .map(|(&id, address)| {
                let mut address = *address;
                address.set_port(address.port() + core as u16);
                (id, address)
            })
            .collect()
    }

    /// Every member's id, this node's included.
    pub fn voters(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_each_core_gets_its_port() {
        let config = ClusterConfig::parse(Some(2), Some("1=127.0.0.1:7000, 2=127.0.0.1:7100,3=127.0.0.1:7200"), 2)
            .unwrap()
            .unwrap();
        assert_eq!(config.voters(), vec![1, 2, 3]);
        assert_eq!(config.core_addresses(1)[&2], "127.0.0.1:7101".parse().unwrap());
        assert_eq!(ClusterConfig::parse(None, None, 2), Ok(None));
    }

    #[test]
    fn bad_peers_are_refused() {
        let check = |node_id, peers: &str, error| assert_eq!(ClusterConfig::parse(node_id, Some(peers), 2), Err(error));
        check(Some(1), "1=127.0.0.1:7000,1=127.0.0.1:7001", ClusterConfigError::Duplicate(1));
        check(Some(1), "0=127.0.0.1:7000", ClusterConfigError::Id("0".into()));
        check(Some(4), "1=127.0.0.1:7000", ClusterConfigError::NotAMember(4));
        check(Some(1), "1:127.0.0.1:7000", ClusterConfigError::Shape("1:127.0.0.1:7000".into()));
        check(Some(1), "1=localhost:7000", ClusterConfigError::Address("localhost:7000".into()));
        check(Some(1), "1=127.0.0.1:65535", ClusterConfigError::PortRange { port: 65535, cores: 2 });
        assert_eq!(ClusterConfig::parse(Some(1), None, 2), Err(ClusterConfigError::Incomplete));
    }
}
