//! Consumer-group leases through the Rust client's lease methods (`sluice_client::aws`) against
//! a real `sluiced`: races of many workers for one lease (the fencing token lets exactly one
//! win each round, decided in log order), a stale owner fenced with LeaseLost, and a SIGKILL
//! of the daemon that keeps every acknowledged take and checkpoint. The HTTP-level suite (any
//! language, signed JSON) is `tests/aws/test_leases.py`.

mod common;

use common::Daemon;
use sluice_client::aws::HttpClient;
use sluice_client::*;
use sluice_protocol::aws::Encoding;
use std::collections::BTreeMap;

const STREAM: &str = "leases";
const SHARDS: u32 = 4;

fn shard(n: u32) -> String {
    format!("shardId-{n:012}")
}

fn take(worker: &str, lease_key: &str, lease_counter: i64) -> TakeLeaseInput {
    TakeLeaseInput {
        stream_name: Some(STREAM.into()),
        application_name: Some("app".into()),
        lease_key: lease_key.into(),
        worker_id: worker.into(),
        lease_counter,
        ..Default::default()
    }
}

fn checkpoint(
    worker: &str,
    lease_key: &str,
    lease_counter: i64,
    sequence_number: &str,
    sub: i64,
) -> CheckpointLeaseInput {
    CheckpointLeaseInput {
        stream_name: Some(STREAM.into()),
        application_name: Some("app".into()),
        lease_key: lease_key.into(),
        worker_id: worker.into(),
        lease_counter,
        checkpoint: sequence_number.into(),
        checkpoint_sub_sequence_number: Some(sub),
        ..Default::default()
    }
}

/// Runs `futures` at once on this executor and returns their outputs in order.
async fn join_all<T: 'static, F: std::future::Future<Output = T> + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.into_iter().map(glommio::spawn_local).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await);
    }
    outputs
}

fn kind(error: &ClientError) -> ErrorKind {
    match error {
        ClientError::Service(error) => error.kind,
        other => panic!("not a service error: {other}"),
    }
}

async fn leases(client: &HttpClient) -> BTreeMap<String, Lease> {
    let input = ListLeasesInput {
        stream_name: Some(STREAM.into()),
        application_name: Some("app".into()),
        ..Default::default()
    };
    let page = client.list_leases(&input).await.unwrap();
    assert!(page.next_token.is_none());
    page.leases.into_iter().map(|lease| (lease.lease_key.clone(), lease)).collect()
}

#[test]
fn concurrent_takes_are_fenced_and_acknowledged_leases_survive_sigkill() {
    let mut daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.http_addr.to_string();
    let endpoint_run = endpoint.clone();
    // What the daemon acknowledged before the kill, out of the test's executor.
    let saved = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let saved_run = saved.clone();
    common::run(move || async move {
        let client = HttpClient::connect(&endpoint_run, Encoding::Json).await.unwrap();
        let create =
            CreateStreamInput { stream_name: STREAM.into(), shard_count: Some(SHARDS as i32), ..Default::default() };
        client.call(&create).await.unwrap();
        let app = CreateApplicationInput {
            stream_name: Some(STREAM.into()),
            application_name: "app".into(),
            lease_duration_millis: Some(600_000),
            ..Default::default()
        };
        assert_eq!(client.create_application(&app).await.unwrap().lease_count, SHARDS as i64);
        let put = PutRecordInput {
            stream_name: Some(STREAM.into()),
            data: bytes::Bytes::from_static(b"x"),
            partition_key: Some("k".into()),
            ..Default::default()
        };
        let sequence_number = client.call(&put).await.unwrap().sequence_number.to_string();

        // Sixteen workers race for each lease with the same observation (counter 0): the
        // takes are all logged, and applying them in log order lets exactly one win.
        for n in 0..SHARDS {
            let key = shard(n);
            let racers = (0..16).map(|w| {
                let (client, key) = (client.clone(), key.clone());
                async move { (w, client.take_lease(&take(&format!("w{w}"), &key, 0)).await) }
            });
            let results = join_all(racers).await;
            let winners: Vec<_> = results.iter().filter(|(_, result)| result.is_ok()).collect();
            assert_eq!(winners.len(), 1, "exactly one worker takes {key}");
            for (_, result) in &results {
                if let Err(error) = result {
                    assert_eq!(kind(error), ErrorKind::ResourceInUse);
                }
            }
            let (winner, lease) = winners[0];
            let lease = lease.as_ref().unwrap();
            assert_eq!((lease.lease_owner.as_deref(), lease.lease_counter), (Some(&*format!("w{winner}")), 1));
            // The winner checkpoints; every loser trying to is fenced.
            let owner = format!("w{winner}");
            client.checkpoint_lease(&checkpoint(&owner, &key, 1, &sequence_number, n as i64)).await.unwrap();
            let loser = format!("w{}", (winner + 1) % 16);
            let fenced = client.checkpoint_lease(&checkpoint(&loser, &key, 1, &sequence_number, 9)).await;
            assert_eq!(kind(&fenced.unwrap_err()), ErrorKind::LeaseLost);
        }
        // Checkpoints from many tasks at once.
        let current = leases(&client).await;
        let mut work = Vec::new();
        for lease in current.values() {
            let owner = lease.lease_owner.clone().unwrap();
            for sub in 0..20 {
                let input = checkpoint(&owner, &lease.lease_key, 1, &sequence_number, 100 + sub);
                let client = client.clone();
                work.push(async move { client.checkpoint_lease(&input).await });
            }
        }
        let results = join_all(work).await;
        // Checkpoints of one lease may apply out of their send order: a lower one applied after
        // a higher one is refused as backwards (InvalidArgument), never lost or reordered.
        for result in results {
            if let Err(error) = result {
                assert_eq!(kind(&error), ErrorKind::InvalidArgument);
            }
        }
        *saved_run.lock().unwrap() = leases(&client).await;
    });
    let before = saved.lock().unwrap().clone();
    assert_eq!(before.len(), SHARDS as usize);
    assert!(before.values().all(|lease| lease.checkpoint_sub_sequence_number >= 100));
    daemon.kill();
    daemon.restart();
    let endpoint = daemon.http_addr.to_string();
    common::run(move || async move {
        let client = HttpClient::connect(&endpoint, Encoding::Json).await.unwrap();
        assert_eq!(leases(&client).await, before, "every acknowledged take and checkpoint survives SIGKILL");
        // Fencing survives too: a worker that never held a lease cannot renew it.
        let (key, lease) = before.iter().next().unwrap();
        let renew = RenewLeaseInput {
            stream_name: Some(STREAM.into()),
            application_name: Some("app".into()),
            lease_key: key.clone(),
            worker_id: "intruder".into(),
            lease_counter: lease.lease_counter,
            ..Default::default()
        };
        assert_eq!(kind(&client.renew_lease(&renew).await.unwrap_err()), ErrorKind::LeaseLost);
        let owner = RenewLeaseInput { worker_id: lease.lease_owner.clone().unwrap(), ..renew };
        client.renew_lease(&owner).await.unwrap();
    });
    daemon.stop();
}
