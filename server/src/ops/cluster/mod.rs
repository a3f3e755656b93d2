//! Replication wired into `sluiced` (issue 13, `docs/replication.md`): with `--node-id` and
//! `--peers`, every shard is a Raft group (TiKV's raft-rs, run by `sluice-cluster`'s
//! [`GroupHost`]) on the core that owns it, on every node, and the catalog's changes (streams,
//! tags, retention, consumers, policies, settings) are the commands of a metadata group on
//! core 0. Without those flags nothing
//! here runs: [`start`] is not called and the data plane checks one `Option` per core batch.
//!
//! Per core: one [`PeerNetwork`] (listening on the member's peer port plus the core index,
//! talking only to the same core of the other members, since a shard lives on the same core
//! index everywhere), and the groups of the shards the core owns. The per-core state lives in
//! a thread-local, as the core's executor does: nothing of it crosses threads.
//!
//! - [`records`]: PutRecord(s) on the shard's leader proposes the admitted batch and answers
//!   once the entry is committed (durable on a quorum) and applied here; every replica applies
//!   the committed entries to its own journal in log order with the leader's arrival time
//!   (`Journal::queue_at`), so sequence numbers and times are identical on every node.
//! - [`meta`]: the catalog's changes as commands of group 0 on core 0
//!   ([`meta::COMMAND_OPERATIONS`]), reshards' steps included (`ops/reshard.rs`); on-demand
//!   streams and encryption not yet.
//! - [`forward`]: a request whose shard (or the catalog) another member leads goes there, and
//!   its answer comes back; which member leads what, every core publishes to the node's
//!   `LeaderTable` as it changes ([`publish_leaders`]).
//! - [`balance`]: each member hands groups to the members leading fewer, until each leads
//!   about its share (a restarted node gets its share back).
//! - [`entry`]: the byte layout of a shard's entries (records, or a reshard parent's seal);
//!   [`journal_entries`]: the same entries as a log kept in the journal stores them (not used
//!   yet);
//!   [`applied`]: what a group's applier
//!   shares with the proposers waiting on it.
//!
//! Unfinished: the Raft log is a second file per group beside the journal (`raft/`), so each
//! record is written (and synced) twice; the journal as the Raft log is the design's next step.
//! The groups' tasks and the peer network run for the executor's life (they end with it,
//! after the drain); a deleted stream's groups stop when the deletion is applied
//! ([`sync_groups`]).

pub mod applied;
pub mod balance;
pub mod delivery;
pub mod entry;
pub mod forward;
pub mod journal_entries;
pub mod membership;
pub mod meta;
pub mod records;
pub mod snapshot;

use crate::ops::node::Node;
use crate::runtime::cluster::{core_addresses, ClusterConfig, Member};
use rand::Rng;
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::host::{GroupHost, GroupHostConfig};
use sluice_cluster::limits::{ELECTION_TICKS, TICK_INTERVAL_MS};
use sluice_cluster::peer_auth::PeerKey;
use sluice_cluster::replica::ReplicaConfig;
use sluice_cluster::transport::{PeerNetwork, PeerSecurity};
use sluice_cluster::wire::GroupId;
use sluice_engine::storage::DmaStorage;
use sluice_model::{ErrorKind, KinesisError};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The metadata group's id. Shard uids start at 1 (`Catalog::next_shard_uid`), so no shard's
/// group is 0.
pub const META_GROUP: GroupId = GroupId(0);

/// The delivery state's group (consumer groups' leases, queues): core 0's internal shard
/// (`delivery::internal_shard_uid`), whose uid no catalog shard reaches.
pub const DELIVERY_GROUP: GroupId = GroupId(crate::ops::delivery::internal_shard_uid(0));

/// How many shard groups one core opens at once ([`sync_groups`]).
const GROUP_STARTS_AT_ONCE: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen for peers on {address}: {source}")]
    Listen { address: std::net::SocketAddr, source: std::io::Error },
    #[error("open the raft state of group {group} in {dir}: {source}")]
    Group { group: u64, dir: String, source: sluice_cluster::ClusterError },
}

thread_local! {
    /// This core's replication state, once [`start`] ran on it (cluster mode only).
    static CORE: RefCell<Option<Rc<ClusterCore>>> = const { RefCell::new(None) };
}

/// One core's replication: its peer network and the groups it hosts.
pub struct ClusterCore {
    pub config: Arc<ClusterConfig>,
    pub core: usize,
    network: PeerNetwork,
    /// Shard uid → its group.
    groups: RefCell<HashMap<u64, Rc<records::ShardGroup>>>,
    /// The metadata group, on core 0.
    meta: RefCell<Option<Rc<meta::MetaGroup>>>,
    /// The delivery state's group, on core 0: its internal shard's entries, applied to the
    /// journal like a shard's; the delivery state follows them there (`ops::delivery`).
    delivery: RefCell<Option<Rc<records::ShardGroup>>>,
    /// Closing parents this core runs a sealer for ([`seal_while_closing`]).
    sealing: RefCell<HashSet<u64>>,
    /// One [`sync_groups`] at a time on this core: it checks for a shard's group, then awaits
    /// the group's start before recording it, and two at once (start-up's, and one core 0's
    /// catalog applier sent while it replayed) started two replicas on one shard's Raft
    /// directory; one cut the log the other was reading (a CI run: "raft log segment is
    /// corrupt at byte 166: read 83 of 429 bytes" on core 1 of a restarted member).
    syncing: glommio::sync::Semaphore,
    /// What this core's shard groups' snapshots did, for the metrics.
    pub snapshots: snapshot::SnapshotCounts,
    /// How often this core's groups changed leaders, for the metrics.
    pub leadership: LeadershipCounts,
    /// The members whose peer addresses this core's network dials now (`membership::keep`).
    peers_now: RefCell<BTreeMap<u64, Member>>,
    /// Signalled by this core's groups when one's leader changes ([`publish_leaders`]).
    leaders_changed: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

/// The cluster's members now, from any core: the catalog's once an admin call changed them,
/// else `--peers`' (empty on a node alone).
pub fn members(node: &Node) -> BTreeMap<u64, Member> {
    match &node.shared.config.cluster {
        Some(config) => config.members_now(node.routes().members.as_deref()),
        None => BTreeMap::new(),
    }
}

/// Whether this node leads the delivery state's group (on core 0; false elsewhere and on a
/// node alone).
pub fn leads_delivery() -> bool {
    core().is_some_and(|core| core.delivery().is_some_and(|group| group.host.leader() == core.config.node_id))
}

/// This core's replication state; `None` on a node alone.
pub fn core() -> Option<Rc<ClusterCore>> {
    CORE.with(|core| core.borrow().clone())
}

/// Starts this core's peer network and the groups of the shards it owns (and on core 0 the
/// metadata group, replaying the catalog commands not applied yet). Called from `run_core`
/// in cluster mode, after the journal opened and the core adopted its shards.
pub async fn start(node: &Rc<Node>, config: Arc<ClusterConfig>) -> Result<(), StartError> {
    let members = members(node);
    let mut peers = core_addresses(&members, node.id);
    // Its own address as --peers gives it: a member the others added is listed there.
    let listen = core_addresses(&config.members, node.id)[&config.node_id];
    peers.remove(&config.node_id);
    let security = &node.shared.config.security;
    let key = security.members.as_ref().map(|members| PeerKey::new(members.secret.peer_key()));
    let peer_security = PeerSecurity { key, tls: security.peer_tls.clone() };
    let network = PeerNetwork::start(config.node_id, listen, &peers, peer_security)
        .map_err(|source| StartError::Listen { address: listen, source })?;
    let core = Rc::new(ClusterCore {
        config,
        core: node.id,
        network,
        groups: RefCell::new(HashMap::new()),
        meta: RefCell::new(None),
        delivery: RefCell::new(None),
        sealing: RefCell::new(HashSet::new()),
        syncing: glommio::sync::Semaphore::new(1),
        snapshots: snapshot::SnapshotCounts::default(),
        leadership: LeadershipCounts::default(),
        peers_now: RefCell::new(members),
        leaders_changed: async_channel::bounded(1),
    });
    CORE.with(|slot| *slot.borrow_mut() = Some(core.clone()));
    glommio::spawn_local(snapshot::serve(node.clone(), core.network.clone())).detach();
    sync_groups(node).await?;
    if node.id == 0 {
        // The catalog's log is small and waits for every member; a member added to the
        // cluster copies the catalog from a peer (`membership::restorer`).
        let restorer = membership::restorer(node.clone());
        let host = core.start_host(node, META_GROUP, "meta".into(), Some(restorer), false).await?;
        let group = meta::MetaGroup::start(node, host);
        *core.meta.borrow_mut() = Some(group);
        // The delivery state's log waits for every member too (like the catalog's); a member
        // added copies the internal shard's records from a peer, as a shard's.
        let name = "delivery".to_string();
        let dir = core.group_dir(node, &name);
        let restorer = snapshot::restorer(node.clone(), DELIVERY_GROUP.0);
        let host = core.start_host(node, DELIVERY_GROUP, name, Some(restorer), false).await?;
        let group = records::ShardGroup::start(node, DELIVERY_GROUP.0, host, &dir, core.config.segment_bytes);
        *core.delivery.borrow_mut() = Some(group);
        glommio::spawn_local(delivery::lead(node.clone())).detach();
    }
    glommio::spawn_local(publish_leaders(node.clone(), core.clone())).detach();
    glommio::spawn_local(balance::balance_leaders(node.clone(), core.clone())).detach();
    glommio::spawn_local(membership::keep(node.clone(), core.clone())).detach();
    tracing::info!(core = node.id, node_id = core.config.node_id, %listen, "replication: this core serves its peers");
    Ok(())
}

/// Starts a group for each shard this core owns that has none yet, and a sealer for each
/// closing one; stops the groups of shards it no longer owns (their stream was deleted) and
/// removes their Raft files. After start-up and after a catalog command created, closed or
/// deleted shards.
pub async fn sync_groups(node: &Rc<Node>) -> Result<(), StartError> {
    let Some(core) = core() else { return Ok(()) };
    // Never closed: the permit comes.
    let _one_at_a_time = core.syncing.acquire_permit(1).await;
    let owned = node.routes().shards_by_core().remove(&node.id).unwrap_or_default();
    let owned_uids: HashSet<u64> = owned.iter().map(|shard| shard.uid).collect();
    let gone: Vec<u64> = core.groups.borrow().keys().copied().filter(|uid| !owned_uids.contains(uid)).collect();
    for uid in gone {
        if let Some(group) = core.groups.borrow_mut().remove(&uid) {
            // The replica's watcher removes its files once it has ended (`start_host`).
            core.network.unregister(GroupId(uid));
            group.host.stop();
            tracing::info!(shard = uid, "replication: the shard's group stopped (its stream was deleted)");
        }
    }
    // Several at a time: each opens its files (a directory, a segment, its hard state, each
    // synced), and a new stream of hundreds of shards waited for them one after another.
    let missing: Vec<u64> =
        owned.iter().map(|shard| shard.uid).filter(|uid| !core.groups.borrow().contains_key(uid)).collect();
    for uids in missing.chunks(GROUP_STARTS_AT_ONCE) {
        let starting: Vec<_> =
            uids.iter().map(|&uid| glommio::spawn_local(start_shard_group(node.clone(), core.clone(), uid))).collect();
        let mut failed = None;
        for task in starting {
            match task.await {
                Ok((uid, group)) => {
                    core.groups.borrow_mut().insert(uid, group);
                }
                Err(error) => failed = failed.or(Some(error)),
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
    }
    for shard in owned {
        let closing = !shard.open && shard.ending_index.is_none();
        if closing && core.sealing.borrow_mut().insert(shard.uid) {
            glommio::spawn_local(seal_while_closing(node.clone(), core.clone(), shard.uid)).detach();
        }
    }
    Ok(())
}

/// Opens shard `uid`'s group on this core and starts its applier.
async fn start_shard_group(
    node: Rc<Node>,
    core: Rc<ClusterCore>,
    uid: u64,
) -> Result<(u64, Rc<records::ShardGroup>), StartError> {
    let name = format!("shard-{uid}");
    let dir = core.group_dir(&node, &name);
    let restorer = snapshot::restorer(node.clone(), uid);
    let host = core.start_host(&node, GroupId(uid), name, Some(restorer), true).await?;
    Ok((uid, records::ShardGroup::start(&node, uid, host, &dir, core.config.segment_bytes)))
}

/// On every member, for a closing parent this core hosts: proposes its seal whenever this
/// member leads the parent's group, until the seal is applied here or the catalog records the
/// parent's end. The metadata leader's reshard driver waits for the seal ([`sealed_end`]) but
/// cannot propose it unless it also leads the parent; this is how the parent's leader,
/// wherever it is, ends it.
async fn seal_while_closing(node: Rc<Node>, core: Rc<ClusterCore>, uid: u64) {
    if let Some(group) = core.group(uid) {
        let still_closing = || {
            node.routes()
                .streams
                .values()
                .flat_map(|stream| stream.shards())
                .any(|shard| shard.uid == uid && !shard.open && shard.ending_index.is_none())
        };
        records::seal(&group, core.config.node_id, still_closing).await;
    }
    core.sealing.borrow_mut().remove(&uid);
}

/// On shard `uid`'s core of the metadata leader, for the reshard driver: the shard's end once
/// its seal is applied here (proposing it if this member leads the shard), or an error once
/// this node no longer leads the catalog (the new leader resumes the reshard).
pub async fn sealed_end(node: &Rc<Node>, uid: u64) -> Result<u64, KinesisError> {
    let core = core().ok_or_else(|| KinesisError::internal("replication is not running on this core"))?;
    let group = core.group(uid).ok_or_else(|| KinesisError::internal(format!("shard uid {uid} has no group here")))?;
    let node_id = core.config.node_id;
    let leads_catalog = || node.shared.leaders.leader(META_GROUP.0) == Some(node_id);
    records::seal(&group, node_id, leads_catalog).await.ok_or_else(|| {
        KinesisError::internal("This node no longer leads the catalog: the new leader finishes the reshard")
    })
}

/// How often the groups of a core changed leaders (cluster mode), for the metrics: a client
/// write in flight at a change gets a retriable error, so a rate of them explains errors.
#[derive(Default)]
pub struct LeadershipCounts {
    /// A group's leader, seen at a tick, was another member than the last one seen (an
    /// election or a handover; the first leader a group has does not count).
    pub changes: Cell<u64>,
    /// Handovers leader balancing asked of a group this core leads (`balance.rs`; the replica
    /// ignores one to a member not caught up).
    pub transfers_requested: Cell<u64>,
}

/// Publishes the leader of each group this core hosts to the node's leader table, which every
/// core reads to decide where to forward a request (`forward`), and counts the changes of
/// leader it sees: as soon as a group's leader changes, and every tick. Runs for the
/// executor's life, like the groups.
async fn publish_leaders(node: Rc<Node>, core: Rc<ClusterCore>) {
    let mut seen = Vec::new();
    // Each group's last leader seen (not 0).
    let mut last: HashMap<u64, u64> = HashMap::new();
    // The groups published last tick, and those among them no longer hosted.
    let mut hosted: HashSet<u64> = HashSet::new();
    let mut gone = Vec::new();
    let changed = core.leaders_changed.1.clone();
    loop {
        futures_lite::future::or(
            async {
                let _ = changed.recv().await;
            },
            glommio::timer::sleep(Duration::from_millis(TICK_INTERVAL_MS)),
        )
        .await;
        seen.clear();
        seen.extend(core.groups.borrow().iter().map(|(&uid, group)| (uid, group.host.leader())));
        if let Some(meta) = core.meta() {
            seen.push((META_GROUP.0, meta.leader()));
        }
        if let Some(delivery) = core.delivery() {
            seen.push((DELIVERY_GROUP.0, delivery.host.leader()));
        }
        let now: HashSet<u64> = seen.iter().map(|(group, _)| *group).collect();
        gone.clear();
        gone.extend(hosted.difference(&now).copied());
        hosted = now;
        node.shared.leaders.publish(&seen, &gone);
        let changes = count_leader_changes(&mut last, &seen);
        core.leadership.changes.set(core.leadership.changes.get() + changes);
    }
}

/// The groups of `seen` (group, leader now; 0: none known) whose leader is another member
/// than the last one `last` holds for them; `last` takes the leaders seen, and forgets the
/// groups no longer hosted.
fn count_leader_changes(last: &mut HashMap<u64, u64>, seen: &[(u64, u64)]) -> u64 {
    let mut changes = 0;
    for &(group, leader) in seen.iter().filter(|(_, leader)| *leader != 0) {
        if last.insert(group, leader).is_some_and(|before| before != leader) {
            changes += 1;
        }
    }
    if last.len() > seen.len() {
        let hosted: HashSet<u64> = seen.iter().map(|(group, _)| *group).collect();
        last.retain(|group, _| hosted.contains(group));
    }
    changes
}

/// A core's peer connections ([`ClusterCore::peers`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerConnections {
    /// The members (other than this node) its dialers hold an open connection to.
    pub connected: usize,
    /// Connections members dialed in, open now: one per member once their openings are over.
    pub incoming: usize,
    /// Incoming connections refused since start-up: a bad hello, a wrong or missing proof of
    /// the cluster secret, a broken frame, or too many open.
    pub refused: u64,
}

impl ClusterCore {
    /// Whether this core's peer network is connected to member `node_id` now (this node
    /// counts as connected to itself).
    pub fn reaches(&self, node_id: u64) -> bool {
        node_id == self.config.node_id || self.network.is_connected(node_id)
    }

    /// This core's peer connections now, and those it refused since start-up.
    pub fn peers(&self) -> PeerConnections {
        let members = self.peers_now.borrow();
        let connected = members.keys().filter(|&&member| member != self.config.node_id);
        let connected = connected.filter(|&&member| self.network.is_connected(member)).count();
        PeerConnections {
            connected,
            incoming: self.network.incoming_connections(),
            refused: self.network.stats().connections_rejected,
        }
    }

    /// Where group `name` of this core keeps its files.
    fn group_dir(&self, node: &Node, name: &str) -> PathBuf {
        node.shared.config.data_dir.join("raft").join(format!("core-{}", self.core)).join(name)
    }

    /// Opens a group's replica from its directory and starts it on this executor. A group
    /// `compacted_past_laggards` lets its logs be compacted past a member far behind
    /// ([`snapshot::LAGGARD_HELD_SEGMENTS`]), which restores from a snapshot with its
    /// `restorer`; one not waits for every member (a member added later still starts from a
    /// snapshot).
    async fn start_host(
        &self,
        node: &Rc<Node>,
        group: GroupId,
        name: String,
        restorer: Option<sluice_cluster::host::Restorer>,
        compacted_past_laggards: bool,
    ) -> Result<GroupHost, StartError> {
        let dir = self.group_dir(node, &name);
        let catalog_members = node.routes().members.clone();
        // The catalog's and the delivery state's groups are on every member from the start.
        let shard_uid = (group != META_GROUP && group != DELIVERY_GROUP).then_some(group.0);
        let voters = self.config.founders(catalog_members.as_deref(), shard_uid);
        let members: BTreeSet<u64> =
            self.peers_now.borrow().keys().chain(self.config.members.keys()).copied().collect();
        let members = members.into_iter().collect();
        // raft-rs draws each election's timeout from `election_ticks`, so two members that
        // time out together do not split the vote again, and the leader's lease is the
        // range's start for every member: a survivor is not refused for a lease the other
        // one still counts down (a timeout drawn once per boot did that, and doubled
        // failovers after a partition).
        // One founder campaigns as soon as a group is new, chosen by the group's id: first
        // leaders are spread evenly over the members, and a new shard is led within a few
        // ticks instead of an election timeout.
        let campaigner = (!voters.is_empty()).then(|| voters[(group.0 % voters.len() as u64) as usize]);
        let mut random = rand::thread_rng();
        let host_config = GroupHostConfig {
            group,
            replica: ReplicaConfig {
                id: self.config.node_id,
                campaigns_when_new: campaigner == Some(self.config.node_id),
                voters,
                members,
                election_ticks: ELECTION_TICKS..2 * ELECTION_TICKS,
                dir: dir.clone(),
                entry_cache_bytes: sluice_cluster::limits::ENTRY_CACHE_BYTES,
                segment_bytes: self.config.segment_bytes,
                laggard_held_bytes_max: (compacted_past_laggards && restorer.is_some())
                    .then(|| snapshot::LAGGARD_HELD_SEGMENTS * self.config.segment_bytes as u64),
                commit_saved_every_ticks: sluice_cluster::limits::COMMIT_SAVED_EVERY_TICKS,
            },
            tick_interval: Duration::from_millis(TICK_INTERVAL_MS),
            boot_nonce: random.gen(),
            leader_changed: Some(self.leaders_changed.0.clone()),
        };
        let group_error = |source| StartError::Group { group: group.0, dir: dir.display().to_string(), source };
        let opened = DurableLog::open_for(DmaStorage, &host_config.replica).await.map_err(group_error)?;
        let (host, running) =
            GroupHost::start(opened, host_config, self.network.transport(group), restorer).map_err(group_error)?;
        self.network.register(group, host.inbox());
        let stopped = host.clone();
        glommio::spawn_local(async move {
            match running.await {
                // The replica stops only if its storage failed: the group is down on this
                // node (fail-stop) until sluiced restarts and recovers it from its disk.
                Err(error) => {
                    tracing::error!(group = group.0, %error, "replication: a replica stopped; restart this node")
                }
                // Or when it was stopped for good: its files go. (A crash before this leaves
                // them; the group is not started again, since its shard is not in the catalog.)
                Ok(()) if stopped.stopped() => {
                    let removed = glommio::executor().spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
                    if let Err(error) = removed {
                        tracing::warn!(group = group.0, %error, "replication: could not remove a stopped group's files");
                    }
                }
                Ok(()) => {}
            }
        })
        .detach();
        Ok(host)
    }

    /// The group of shard `shard_uid` on this core (the delivery group for core 0's internal
    /// shard).
    pub fn group(&self, shard_uid: u64) -> Option<Rc<records::ShardGroup>> {
        if shard_uid == DELIVERY_GROUP.0 {
            return self.delivery();
        }
        self.groups.borrow().get(&shard_uid).cloned()
    }

    /// Over this core's shard groups (led or not), the entries committed that the applier has
    /// not yet made durable in the journal: a member back from a snapshot or a crash shows
    /// here while it catches up, and a stuck applier stays.
    pub fn apply_lag_entries(&self) -> u64 {
        self.groups.borrow().values().map(|group| group.apply_lag()).sum()
    }

    /// The shard groups of this core that this node leads.
    pub fn led_groups(&self) -> Vec<Rc<records::ShardGroup>> {
        let node_id = self.config.node_id;
        self.groups.borrow().values().filter(|group| group.host.leader() == node_id).cloned().collect()
    }

    pub fn meta(&self) -> Option<Rc<meta::MetaGroup>> {
        self.meta.borrow().clone()
    }

    /// The delivery state's group, on core 0.
    pub fn delivery(&self) -> Option<Rc<records::ShardGroup>> {
        self.delivery.borrow().clone()
    }

    /// Every group this core hosts, by group id: its shards', and on core 0 the catalog's and
    /// the delivery state's.
    pub fn hosts(&self) -> Vec<(u64, GroupHost)> {
        let mut hosts: Vec<(u64, GroupHost)> =
            self.groups.borrow().iter().map(|(&uid, group)| (uid, group.host.clone())).collect();
        if let Some(meta) = self.meta() {
            hosts.push((META_GROUP.0, meta.host().clone()));
        }
        if let Some(delivery) = self.delivery() {
            hosts.push((DELIVERY_GROUP.0, delivery.host.clone()));
        }
        hosts
    }

    /// Where a client reaches member `node_id`, for error messages: its client listeners as
    /// `--peers` gives them, or its peer address when it gives none.
    pub fn member_addresses(&self, node_id: u64) -> Option<String> {
        self.peers_now.borrow().get(&node_id).map(member_addresses)
    }

    /// The refusal of a write to `what` (a group: "shard uid 7", "the catalog") that this
    /// member does not lead, with `leader` (0: none known) named, and nothing of it stored:
    /// the member that forwarded it sends it on (`ErrorKind::NotLeader`, `dispatch`); a client
    /// hears a retriable InternalFailure.
    pub fn not_leader(&self, what: &str, leader: u64) -> KinesisError {
        KinesisError::new(
            ErrorKind::NotLeader,
            match self.member_addresses(leader) {
                Some(addresses) => format!("This node does not lead {what}: node {leader} ({addresses}) does; retry"),
                None => {
                    let mut what = what.to_string();
                    if let Some(first) = what.get_mut(..1) {
                        first.make_ascii_uppercase();
                    }
                    format!("{what} has no leader right now (an election is under way); retry")
                }
            },
        )
    }
}

/// A member's client addresses in words, for error messages.
pub fn member_addresses(member: &crate::runtime::cluster::Member) -> String {
    match (member.native, member.http) {
        (None, None) => format!("peer address {}", member.peer),
        (Some(native), None) => format!("native protocol at {native}"),
        (None, Some(http)) => format!("HTTP at {http}"),
        (Some(native), Some(http)) => format!("native protocol at {native}, HTTP at {http}"),
    }
}

/// The operations on consumer groups' applications and leases: each runs on the delivery
/// group's leader, where the other members forward it.
pub const LEASE_OPERATIONS: &[&str] = &[
    "CreateApplication",
    "DeleteApplication",
    "DescribeApplication",
    "ListApplications",
    "ListLeases",
    "TakeLease",
    "RenewLease",
    "ReleaseLease",
    "StealLease",
    "CheckpointLease",
];

/// The operations on queues: each runs on the delivery group's leader, where the other
/// members relay it over HTTP, the only protocol that carries them (`net::http::relay`).
pub const QUEUE_OPERATIONS: &[&str] = &[
    "CreateQueue",
    "DescribeQueue",
    "ListQueues",
    "UpdateQueue",
    "DeleteQueue",
    "ReceiveQueueRecords",
    "AcknowledgeQueueRecords",
    "UpdateQueueRecordsVisibility",
    "ReceiveDeadLetterQueueRecords",
    "AcknowledgeDeadLetterQueueRecords",
    "RestoreDeadLetterQueueRecords",
    "UpdateDeadLetterQueueRecordsVisibility",
];

/// Whether operation `name` reads or changes the delivery state ([`LEASE_OPERATIONS`],
/// [`QUEUE_OPERATIONS`]).
pub fn is_delivery_operation(name: &str) -> bool {
    LEASE_OPERATIONS.contains(&name) || QUEUE_OPERATIONS.contains(&name)
}

/// Whether operation `name` reads the catalog (or a node's own state): served from this
/// node's copy, which the metadata group keeps equal to the others', once this node caught up
/// with the commit its leader confirms (`dispatch::catalog_read`).
pub fn is_catalog_read(name: &str) -> bool {
    (name.starts_with("Describe") || name.starts_with("List") || name == "GetResourcePolicy")
        && !is_delivery_operation(name)
}

/// In cluster mode, before an operation runs: the operations that work on a replicated node
/// pass; the others (delivery streams) answer an error naming what is unfinished.
///
/// Reads, SubscribeToShard included, are served by any member from its own journal, where
/// records arrive only once committed (applied in log order): a subscription on a follower
/// pushes each record as the follower applies it, and goes on through a failover of the
/// shard's leader. When the subscription's node dies, the consumer subscribes again at
/// another member after the last sequence number it saw, as AWS consumers do when a
/// subscription ends. Unfinished: AWS refuses a second subscription of one consumer to one
/// shard within 5 s (ResourceInUseException); each member checks that only for the
/// subscriptions it serves itself.
pub fn check_operation(operation: sluice_model::Operation) -> Result<(), sluice_model::KinesisError> {
    let name = operation.name();
    let replicated =
        matches!(name, "PutRecord" | "PutRecords" | "GetShardIterator" | "GetRecords" | "SubscribeToShard")
            || meta::is_command(name)
            || is_delivery_operation(name);
    if replicated || is_catalog_read(name) {
        Ok(())
    } else {
        Err(meta::refuse_unreplicated(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_leader_counts_once_and_a_first_leader_or_none_does_not() {
        let mut last = HashMap::new();
        // Two groups get their first leaders: no change yet.
        assert_eq!(count_leader_changes(&mut last, &[(1, 0), (2, 0)]), 0);
        assert_eq!(count_leader_changes(&mut last, &[(1, 3), (2, 1)]), 0);
        // Group 1 loses its leader (an election under way), then gets another: one change.
        assert_eq!(count_leader_changes(&mut last, &[(1, 0), (2, 1)]), 0);
        assert_eq!(count_leader_changes(&mut last, &[(1, 2), (2, 1)]), 1);
        assert_eq!(count_leader_changes(&mut last, &[(1, 2), (2, 1)]), 0);
        // The same leader again after none is no change; a handover of group 2 is.
        assert_eq!(count_leader_changes(&mut last, &[(1, 0), (2, 3)]), 1);
        assert_eq!(count_leader_changes(&mut last, &[(1, 2), (2, 3)]), 0);
        // A group no longer hosted is forgotten, so its return starts afresh.
        assert_eq!(count_leader_changes(&mut last, &[(2, 3)]), 0);
        assert!(!last.contains_key(&1));
        assert_eq!(count_leader_changes(&mut last, &[(1, 1), (2, 3)]), 0);
    }
}
