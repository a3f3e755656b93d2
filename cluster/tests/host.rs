//! What an append answers when its leader is deposed before the entry commits: three
//! `GroupHost`s of one group on one glommio executor, their files on disk, joined by an
//! in-memory network whose links the test cuts one direction at a time.
//!
//! The deposed leader follows its append to the commit of its index (`host.rs`): it answers
//! success when the next leader commits the entry, and `NotLeader` (certain: in no log) when
//! the next leader commits another entry there. Before, both answered "leadership lost"
//! (outcome unknown) as soon as the leader stepped down.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::eraftpb::Message;
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::host::{AppendError, GroupHost, GroupHostConfig};
use sluice_cluster::replica::ReplicaConfig;
use sluice_cluster::wire::GroupId;
use sluice_cluster::{Input, Transport};
use sluice_engine::storage::DmaStorage;

const NODES: [u64; 3] = [1, 2, 3];
const TICK: Duration = Duration::from_millis(10);
/// Not a threshold on speed: only keeps a broken group from hanging the test.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The in-memory network: each node's inbox, and the links cut (from, to).
#[derive(Default)]
struct Network {
    inboxes: RefCell<HashMap<u64, async_channel::Sender<Input>>>,
    cut: RefCell<BTreeSet<(u64, u64)>>,
}

impl Network {
    fn cut(&self, links: &[(u64, u64)]) {
        self.cut.borrow_mut().extend(links.iter().copied());
    }

    fn heal(&self) {
        self.cut.borrow_mut().clear();
    }
}

struct Link {
    from: u64,
    network: Rc<Network>,
}

impl Transport for Link {
    fn send(&self, message: Message) {
        if self.network.cut.borrow().contains(&(self.from, message.to)) {
            return;
        }
        if let Some(inbox) = self.network.inboxes.borrow().get(&message.to) {
            let _ = inbox.try_send(Input::Message(Box::new(message)));
        }
    }
}

/// Starts the three members of a new group in `dir`, node 1 campaigning at once.
async fn start(dir: &Path, network: &Rc<Network>) -> HashMap<u64, GroupHost> {
    sluice_engine::journal::prime_iopoll_probe(dir).await.unwrap();
    let mut hosts = HashMap::new();
    for id in NODES {
        let config = GroupHostConfig {
            group: GroupId(7),
            replica: ReplicaConfig {
                id,
                voters: NODES.to_vec(),
                members: NODES.to_vec(),
                election_ticks: 10..20,
                dir: dir.join(format!("n{id}")),
                entry_cache_bytes: 1 << 20,
                segment_bytes: 1 << 20,
                laggard_held_bytes_max: None,
                campaigns_when_new: id == 1,
                commit_saved_every_ticks: sluice_cluster::limits::COMMIT_SAVED_EVERY_TICKS,
            },
            tick_interval: TICK,
            boot_nonce: 0x5eed_0000 + id,
            leader_changed: None,
        };
        let link = Link { from: id, network: network.clone() };
        let opened = DurableLog::open_for(DmaStorage, &config.replica).await.unwrap();
        let (host, running) = GroupHost::start(opened, config, link, None).unwrap();
        running.detach();
        network.inboxes.borrow_mut().insert(id, host.inbox());
        hosts.insert(id, host);
    }
    hosts
}

/// Waits until `holds`, looking every tick.
async fn until(what: &str, holds: impl Fn() -> bool) {
    let start = Instant::now();
    while !holds() {
        assert!(start.elapsed() < HANG_GUARD, "{what}: not within {HANG_GUARD:?}");
        glommio::timer::sleep(TICK).await;
    }
}

/// The member every member names as leader, once they agree.
async fn agreed_leader(hosts: &HashMap<u64, GroupHost>) -> u64 {
    until("the members agree on a leader", || {
        let leaders: BTreeSet<u64> = hosts.values().map(GroupHost::leader).collect();
        leaders.len() == 1 && !leaders.contains(&0)
    })
    .await;
    hosts[&1].leader()
}

/// Runs `test` on a glommio executor of its own, with the group started.
fn run<F, Fut>(test: F)
where
    F: FnOnce(Rc<Network>, HashMap<u64, GroupHost>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            let network = Rc::new(Network::default());
            let hosts = start(&path, &network).await;
            test(network, hosts).await;
        })
    })
    .join()
    .unwrap();
}

/// The leader appends an entry that only one follower receives, and never hears that it did;
/// cut off from the other follower too, it steps down. That follower, whose log is the
/// longest, is elected and commits the entry: the deposed leader answers success, at the
/// index and term of the entry it proposed.
#[test]
fn an_append_its_leader_lost_is_acknowledged_once_the_next_leader_commits_it() {
    run(|network, hosts| async move {
        let leader = agreed_leader(&hosts).await;
        hosts[&leader].append(Bytes::from_static(b"first")).await.expect("an append with every link up");
        let [carrier, other] = [0, 1].map(|at| NODES.iter().copied().filter(|&id| id != leader).nth(at).unwrap());
        network.cut(&[(carrier, leader), (leader, other), (other, leader)]);
        let deposed = hosts[&leader].clone();
        let append = glommio::spawn_local(async move { deposed.append(Bytes::from_static(b"carried")).await });
        until("the leader cut off from its quorum steps down", || hosts[&leader].leader() != leader).await;
        // Healed before, the deposed leader may win again and commit the entry itself.
        until("the follower holding the entry is elected", || hosts[&carrier].leader() == carrier).await;
        network.heal();
        let appended = append.await.expect("committed by the next leader, so acknowledged");
        assert!(appended.term < hosts[&carrier].status().term, "the entry is of the deposed leader's term");
        let committed = hosts[&carrier].read(appended.index, 1).await;
        assert_eq!(committed, vec![Bytes::from_static(b"carried")], "acknowledged at its own index");
    });
}

/// The leader appends an entry no one receives; the other two elect a leader, which commits
/// entries of its own at that index. Once the link heals, the deposed leader answers
/// `NotLeader`: its entry is in no log, for good.
#[test]
fn an_append_whose_index_the_next_leader_filled_is_refused_as_stored_nowhere() {
    run(|network, hosts| async move {
        let leader = agreed_leader(&hosts).await;
        hosts[&leader].append(Bytes::from_static(b"first")).await.expect("an append with every link up");
        let others: Vec<u64> = NODES.iter().copied().filter(|&id| id != leader).collect();
        network.cut(&others.iter().flat_map(|&id| [(id, leader), (leader, id)]).collect::<Vec<_>>());
        let deposed = hosts[&leader].clone();
        let append = glommio::spawn_local(async move { deposed.append(Bytes::from_static(b"lost")).await });
        until("the others elect a leader", || {
            let next = hosts[&others[0]].leader();
            next != 0 && next != leader && hosts[&others[1]].leader() == next
        })
        .await;
        let next = hosts[&others[0]].leader();
        for _ in 0..3 {
            hosts[&next].append(Bytes::from_static(b"next")).await.expect("the majority writes on");
        }
        network.heal();
        match append.await {
            Err(AppendError::NotLeader { .. }) => {}
            other => panic!("an append whose index holds another committed entry answered {other:?}"),
        }
    });
}
