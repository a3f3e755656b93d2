//! A page of a group's log kept in the journal, asked of a peer over the real peer network
//! (`PeerNetwork::fetch_runs`, TCP on loopback) and answered from the peer's journal on real
//! files (`journal_log::answer_runs`), as a member restoring into its journal asks: the page
//! that arrives is the peer's own listing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_cluster::journal_log::{answer_runs, decode_peer_runs, peer_runs};
use sluice_cluster::transport::{PeerNetwork, PeerSecurity, RunsAsked};
use sluice_cluster::wire::GroupId;
use sluice_engine::clock::SystemClock;
use sluice_engine::format::RaftPosition;
use sluice_engine::journal::{AppendRecord, Journal, JournalConfig, ShardSpec};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::shard_index::FIRST_RECORD_INDEX;

const SHARD: u64 = 7;
/// Not a threshold on speed: only keeps a broken network from hanging the test.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Node 2's journal holds entries 1 to 10 of its shard's log, one record each but entry 5
/// (a position-only run). Node 1 asks it for entries 3 to 6 of the log up to entry 10, over
/// the network: the page is node 2's listing, entry 5 at the place where entry 6 starts.
#[test]
fn a_page_of_runs_asked_over_the_network_is_the_peers_listing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            sluice_engine::journal::prime_iopoll_probe(&path).await.unwrap();
            let journal = Journal::open(JournalConfig::new(path.join("journal")), Arc::new(SystemClock)).await.unwrap();
            let seq_prefix = ShardSeqPrefix::new(1_700_000_000, 0);
            journal.register_shard(ShardSpec { uid: SHARD, seq_prefix, retention_ms: i64::MAX / 4 });
            let mut next = FIRST_RECORD_INDEX;
            for index in 1..=10u64 {
                let position = RaftPosition { index, term: 2 };
                let mut queued = if index == 5 {
                    journal.queue_position(SHARD, next, position).await.unwrap()
                } else {
                    let data = Bytes::from(vec![index as u8; 100]);
                    let record =
                        AppendRecord { shard_uid: SHARD, partition_key: Bytes::from_static(b"k"), data, sealed: false };
                    let queued = journal.queue_at(vec![record], 1_700_000_000_000, next, Some(position)).await.unwrap();
                    next += 1;
                    queued
                };
                queued.durable().await.unwrap();
            }
            let (one, two) = (address(sluice_testkit::free_port()), address(sluice_testkit::free_port()));
            let peers = |id: u64, at: SocketAddr| BTreeMap::from([(id, at)]);
            let asking = PeerNetwork::start(1, one, &peers(2, two), PeerSecurity::default()).unwrap();
            let answering = PeerNetwork::start(2, two, &peers(1, one), PeerSecurity::default()).unwrap();
            let requests = answering.copy_requests();
            let served = journal.clone();
            glommio::spawn_local(async move {
                while let Ok(request) = requests.recv().await {
                    let asked = request.runs.expect("only pages of runs are asked here");
                    answering.answer(&request, answer_runs(&served, request.group.0, request.from, asked).await);
                }
            })
            .detach();
            let asked = RunsAsked { count: 4, until_index: 10, until_term: 2 };
            let start = Instant::now();
            // The first asks may go before the connection is up (a copy request is dropped
            // then, as a lossy network would): asked again.
            let answer = loop {
                if let Some(answer) = asking.fetch_runs(2, GroupId(SHARD), 3, asked).await {
                    break answer;
                }
                assert!(start.elapsed() < HANG_GUARD, "node 2 never answered");
            };
            let page = decode_peer_runs(&answer).expect("the page decodes").expect("node 2 can tell");
            let position = RaftPosition { index: 10, term: 2 };
            let local = peer_runs(&journal, SHARD, position, 3, 4).await.unwrap().unwrap();
            assert_eq!(page, local, "the page is node 2's own listing");
            let listed: Vec<(u64, u64, u64)> =
                page.runs.iter().map(|run| (run.position.index, run.first_index, run.end_index)).collect();
            let first = FIRST_RECORD_INDEX;
            assert_eq!(
                listed,
                [
                    (3, first + 2, first + 3),
                    (4, first + 3, first + 4),
                    (5, first + 4, first + 4),
                    (6, first + 4, first + 5)
                ]
            );
            assert_eq!((page.through, page.end), (6, first + 9));
            // What no member asks, off the network: answered as a page the peer cannot tell,
            // and a count past the page's limit is cut to it.
            for (from, until_index) in [(3, u64::MAX), (0, 10), (3, 0)] {
                let asked = RunsAsked { count: u32::MAX, until_index, until_term: 2 };
                let answer = answer_runs(&journal, SHARD, from, asked).await;
                assert_eq!(decode_peer_runs(&answer), Ok(None), "from {from} until {until_index}");
            }
            let asked = RunsAsked { count: u32::MAX, until_index: 10, until_term: 2 };
            let whole = decode_peer_runs(&answer_runs(&journal, SHARD, 1, asked).await).unwrap().unwrap();
            assert_eq!((whole.runs.len(), whole.through), (10, 10), "a count past the limit lists up to the snapshot");
        })
    })
    .join()
    .unwrap();
}
