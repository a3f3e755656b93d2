//! Replication across network partitions: three real `sluiced` processes, each alone in a
//! network namespace of its own, joined by a bridge (`replication/netns.rs`). A writer in the
//! test's namespace puts records continuously to whichever node leads the shard, while the
//! test cuts one node off and heals it again and again: the shard's leader (a new one must be
//! elected by the two left, and the old one must acknowledge nothing it cannot commit) and a
//! follower (the majority writes on without it; it catches up once healed). A second writer,
//! inside the cut-off node's namespace, keeps writing to that node while it is alone: whatever
//! it gets acknowledged must be on every node afterwards. The checker then reads the shard
//! from every node: every acknowledged record exactly once, in order, byte-exact, and all
//! three nodes serving the very same records.
//!
//! Needs root (network namespaces). `SLUICE_CLUSTER_PARTITION_SECONDS` (default 20; CI sets 8)
//! is how long partitions go on; at least one of each kind happens.

mod common;
mod replication;

use common::{run, Daemon};
use replication::netns::Network;
use replication::{call_any, percentile, wait_until_every_node_agrees, write, Shared};
use sluice_client::*;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAM: &str = "partitioned";
const NODES: usize = 3;
/// The port each node listens on for its peers (alone in its namespace, so fixed).
const PEER_PORT: u16 = 7400;

/// Runs `work` on a glommio executor whose thread is in network namespace `namespace`: a
/// thread enters it with setns(2), and the executor's thread, created from it, inherits it.
fn run_in_namespace<F, Fut>(namespace: String, work: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{namespace}")).expect("the namespace's file");
        // SAFETY: setns(2) on a descriptor we own; it changes only this thread's namespace.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        run(work);
    })
}

#[test]
fn partitions_of_the_leader_or_a_follower_lose_no_acknowledged_record() {
    let partition_seconds: u64 =
        std::env::var("SLUICE_CLUSTER_PARTITION_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let network = Network::new(NODES);
    let peers: Vec<String> = (1..=NODES).map(|node| format!("{node}={}:{PEER_PORT}", network.address(node))).collect();
    let peers = peers.join(",");
    let mut daemons: Vec<Daemon> = (1..=NODES)
        .map(|node| {
            let id = node.to_string();
            let args = ["--node-id", id.as_str(), "--peers", peers.as_str()];
            Daemon::start_in_namespace(&network.namespace(node), network.address(node), "unlimited", 1, &args)
        })
        .collect();
    let endpoints: Vec<String> = daemons.iter().map(Daemon::endpoint).collect();
    let shared = Arc::new(Shared::new(endpoints.clone()));

    let creator = shared.clone();
    run(move || async move {
        let create = CreateStreamInput { stream_name: STREAM.into(), shard_count: Some(1), ..Default::default() };
        call_any(&creator, &create, Duration::from_secs(60)).await;
        let endpoints: Vec<String> = creator.endpoints.lock().unwrap().iter().flatten().cloned().collect();
        for endpoint in endpoints {
            let client = Client::connect(&endpoint).await.unwrap();
            let describe = DescribeStreamSummaryInput { stream_name: Some(STREAM.into()), stream_arn: None };
            let start = Instant::now();
            while client.call(&describe).await.is_err() {
                assert!(start.elapsed() < Duration::from_secs(30), "the stream never reached {endpoint}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let writer_shared = shared.clone();
    let writer = std::thread::spawn(move || run(move || async move { write(&writer_shared, STREAM, "main", 7).await }));

    let mut leader_failovers = Vec::new();
    let mut follower_stalls = Vec::new();
    let mut minority_acked = 0;
    let started = Instant::now();
    let mut healthy_since = shared.wait_for_ack_after(started, None);
    for cycle in 0.. {
        if started.elapsed() >= Duration::from_secs(partition_seconds) && cycle >= 2 {
            break;
        }
        shared.wait_for_ack_after(healthy_since, None);
        std::thread::sleep(Duration::from_millis(300));
        let leader = shared.leader.load(Ordering::SeqCst);
        let cut = if cycle % 2 == 0 { leader } else { (leader + 1) % NODES };
        let cut_at = Instant::now();
        network.isolate(cut + 1);
        // The cut-off node's own writer: alone, it must not get an acknowledgement for what
        // it cannot commit (or if it does, the record must survive: the checker sees to it).
        let minority = Arc::new(Shared::new(vec![endpoints[cut].clone()]));
        let minority_writer = {
            let minority = minority.clone();
            let label = format!("minority-{cycle}");
            run_in_namespace(network.namespace(cut + 1), move || async move {
                write(&minority, STREAM, &label, 11 + cycle as u64).await
            })
        };
        let next = shared.wait_for_ack_after(cut_at, Some(cut));
        if cut == leader {
            leader_failovers.push(next - cut_at);
        } else {
            follower_stalls.push(next - cut_at);
        }
        eprintln!(
            "cut off node {} ({}): next write acknowledged by another after {:?}",
            cut + 1,
            if cut == leader { "the leader" } else { "a follower" },
            next - cut_at
        );
        // The majority writes on for a while without it.
        std::thread::sleep(Duration::from_millis(700));
        minority.stop.store(true, Ordering::SeqCst);
        minority_writer.join().unwrap();
        let acked = std::mem::take(&mut *minority.acked.lock().unwrap());
        minority_acked += acked.len();
        shared.acked.lock().unwrap().extend(acked);
        network.heal(cut + 1);
        healthy_since = Instant::now();
    }
    shared.wait_for_ack_after(healthy_since, None);
    shared.stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = std::mem::take(&mut *shared.acked.lock().unwrap());
    let (acknowledged, stored) = wait_until_every_node_agrees(endpoints, STREAM, acked);
    leader_failovers.sort();
    follower_stalls.sort();
    eprintln!(
        "{} partitions of the leader, {} of a follower; {acknowledged} records acknowledged ({minority_acked} by a \
         node while cut off), {stored} stored on each node; leader failover p50 {:?} max {:?} (with the \
         writer's {:?} wait for the silent old leader); next write after a follower was cut off: p50 {:?} max {:?}",
        leader_failovers.len(),
        follower_stalls.len(),
        percentile(&leader_failovers, 0.5),
        leader_failovers.last().unwrap(),
        replication::CALL_LIMIT,
        percentile(&follower_stalls, 0.5),
        follower_stalls.last().unwrap(),
    );
    assert!(acknowledged > 0);
    for daemon in &mut daemons {
        daemon.stop();
    }
}
