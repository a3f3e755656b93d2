//! What an append answers when its leader is deposed before the entry commits: three
//! `GroupHost`s of one group on one glommio executor, their files on disk, joined by an
//! in-memory network whose links the test cuts one direction at a time.
//!
//! The deposed leader follows its append to the commit of its index (`host.rs`): it answers
//! success when the next leader commits the entry, and `NotLeader` (certain: in no log) when
//! the next leader commits another entry there. Before, both answered "leadership lost"
//! (outcome unknown) as soon as the leader stepped down.
//!
//! And a group whose log is kept in each member's journal (`journal_log`) on real files,
//! O_DIRECT through io_uring as `sluiced` writes them: each acknowledged append says where its
//! records start, which is where every member serves them.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::eraftpb::{ConfState, Message};
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::host::{AppendError, GroupHost, GroupHostConfig};
use sluice_cluster::journal_log::{EntryCodec, JournalLog};
use sluice_cluster::replica::ReplicaConfig;
use sluice_cluster::wire::GroupId;
use sluice_cluster::{Input, Transport};
use sluice_engine::clock::SystemClock;
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::{AppendRecord, Journal, JournalConfig, ShardSpec, StoredRecord};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::shard_index::FIRST_RECORD_INDEX;
use sluice_engine::storage::DmaStorage;
use std::sync::Arc;

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

/// The group's id, and its shard's uid in the journals.
const GROUP: u64 = 7;

/// The configuration of member `id` of the group, its files in `dir`.
fn member_config(id: u64, dir: &Path) -> GroupHostConfig {
    GroupHostConfig {
        group: GroupId(GROUP),
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
    }
}

/// Starts the three members of a new group in `dir`, node 1 campaigning at once.
async fn start(dir: &Path, network: &Rc<Network>) -> HashMap<u64, GroupHost> {
    sluice_engine::journal::prime_iopoll_probe(dir).await.unwrap();
    let mut hosts = HashMap::new();
    for id in NODES {
        let config = member_config(id, dir);
        let link = Link { from: id, network: network.clone() };
        let opened = DurableLog::open_for(DmaStorage, &config.replica).await.unwrap();
        let (host, running) = GroupHost::start(opened, config, link, None).unwrap();
        running.detach();
        network.inboxes.borrow_mut().insert(id, host.inbox());
        hosts.insert(id, host);
    }
    hosts
}

/// The test's entries, as a journal keeps them: a non-empty entry is one record (its bytes
/// whole, arriving at [`ARRIVAL_MS`]); the new leader's empty entry holds none.
struct OneRecord;

const ARRIVAL_MS: i64 = 1_700_000_000_000;
/// The shard's retention: long enough that records arriving at [`ARRIVAL_MS`] are not expired.
const KEPT_FOR_EVER_MS: i64 = i64::MAX / 4;

impl EntryCodec for OneRecord {
    fn records(&self, shard_uid: u64, data: &Bytes) -> Option<(i64, Vec<AppendRecord>)> {
        let record =
            AppendRecord { shard_uid, partition_key: Bytes::from_static(b"k"), data: data.clone(), sealed: false };
        (!data.is_empty()).then(|| (ARRIVAL_MS, vec![record]))
    }

    fn entry(&self, records: &[StoredRecord]) -> Bytes {
        records[0].data.clone()
    }
}

/// Starts the three members of a new group in `dir`, each with its log in a journal of its own
/// (`n<id>/journal`), node 1 campaigning at once; returns the hosts and the journals.
async fn start_in_journals(
    dir: &Path,
    network: &Rc<Network>,
) -> (HashMap<u64, GroupHost>, HashMap<u64, Journal<DmaStorage>>) {
    sluice_engine::journal::prime_iopoll_probe(dir).await.unwrap();
    let (mut hosts, mut journals) = (HashMap::new(), HashMap::new());
    for id in NODES {
        let config = member_config(id, dir);
        let journal_config = JournalConfig::new(config.replica.dir.join("journal"));
        let journal = Journal::open(journal_config, Arc::new(SystemClock)).await.unwrap();
        let seq_prefix = ShardSeqPrefix::new(1_700_000_000, 0);
        journal.register_shard(ShardSpec { uid: GROUP, seq_prefix, retention_ms: KEPT_FOR_EVER_MS });
        let conf_state = ConfState::from((NODES.to_vec(), vec![]));
        let raft_dir = config.replica.dir.join("raft");
        let opened = JournalLog::open(journal.clone(), GROUP, OneRecord, DmaStorage, &raft_dir, conf_state, 1 << 20)
            .await
            .unwrap();
        let link = Link { from: id, network: network.clone() };
        let (host, running) = GroupHost::start(opened, config, link, None).unwrap();
        running.detach();
        network.inboxes.borrow_mut().insert(id, host.inbox());
        hosts.insert(id, host);
        journals.insert(id, journal);
    }
    (hosts, journals)
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

/// Every record shard [`GROUP`] serves in `journal` (up to what its group published), with
/// its record index.
async fn served(journal: &Journal<DmaStorage>) -> Vec<StoredRecord> {
    let mut records = Vec::new();
    let mut from = FIRST_RECORD_INDEX;
    loop {
        let batch = journal.read(GROUP, from, 1000, usize::MAX).await.expect("the shard reads");
        if batch.records.is_empty() {
            return records;
        }
        from = batch.next_index;
        records.extend(batch.records);
    }
}

/// Appends one record of each of `rounds` (its bytes: the round's number, 1 + 100 × round
/// times) through `leader`: each acknowledged entry's place, Raft position and record.
async fn append_rounds(leader: &GroupHost, rounds: std::ops::Range<u8>) -> Vec<(u64, RaftPosition, Bytes)> {
    let mut appended = Vec::new();
    for round in rounds {
        let data = Bytes::from(vec![round; 1 + usize::from(round) * 100]);
        let entry = leader.append(data.clone()).await.expect("an append with every link up");
        let place = entry.place.expect("a log in the journal places each entry");
        appended.push((place, RaftPosition { index: entry.index, term: entry.term }, data));
    }
    appended
}

/// Waits until every member's journal serves every record of `appended`, then checks that
/// each serves exactly those, each at its entry's place with its entry's Raft position.
async fn check_served(journals: &HashMap<u64, Journal<DmaStorage>>, appended: &[(u64, RaftPosition, Bytes)]) {
    for id in NODES {
        let journal = &journals[&id];
        let start = Instant::now();
        let mut records = served(journal).await;
        while records.len() < appended.len() {
            assert!(start.elapsed() < HANG_GUARD, "node {id} serves {} records", records.len());
            glommio::timer::sleep(TICK).await;
            records = served(journal).await;
        }
        assert_eq!(records.len(), appended.len(), "node {id} serves only the appended records");
        for (record, (place, position, data)) in records.iter().zip(appended) {
            assert_eq!(record.sequence_number.record_index(), *place, "node {id}: where a record is");
            assert_eq!(record.raft, Some(*position), "node {id}: the entry of record {place}");
            assert_eq!(&record.data, data, "node {id}: the bytes of record {place}");
        }
    }
}

/// The log kept in each member's journal, on real files: the leader's appends of one record
/// each are acknowledged with their entry's place, the first record index of its records
/// (the new leader's empty entry before them holds none), and every member's journal serves
/// each record there, with its entry's Raft position, once the group published it. A
/// proposer in `sluiced` tells its records' sequence numbers from that place. Then every
/// member restarts, its log rebuilt from its journal's runs, and the group goes on where the
/// records end.
#[test]
fn an_append_to_a_log_in_the_journals_says_where_every_member_serves_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            let network = Rc::new(Network::default());
            let (hosts, journals) = start_in_journals(&path, &network).await;
            let leader = agreed_leader(&hosts).await;
            let mut appended = append_rounds(&hosts[&leader], 0..20).await;
            let places: Vec<u64> = appended.iter().map(|(place, _, _)| *place).collect();
            let expected: Vec<u64> = (FIRST_RECORD_INDEX..FIRST_RECORD_INDEX + 20).collect();
            assert_eq!(places, expected, "one record per entry, in the order of the appends");
            check_served(&journals, &appended).await;
            for host in hosts.values() {
                host.stop();
            }
            // The replicas end once they have handled what their inboxes hold.
            glommio::timer::sleep(TICK * 10).await;
            for journal in journals.values() {
                journal.close().await.expect("the journal closes");
            }
            let (hosts, journals) = start_in_journals(&path, &network).await;
            let leader = agreed_leader(&hosts).await;
            appended.extend(append_rounds(&hosts[&leader], 20..30).await);
            let places: Vec<u64> = appended.iter().map(|(place, _, _)| *place).collect();
            let expected: Vec<u64> = (FIRST_RECORD_INDEX..FIRST_RECORD_INDEX + 30).collect();
            assert_eq!(places, expected, "after the restart, the records go on where they ended");
            check_served(&journals, &appended).await;
        })
    })
    .join()
    .unwrap();
}
