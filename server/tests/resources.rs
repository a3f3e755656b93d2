//! Resource bounds: clients that pipeline requests for large answers and never read them
//! must not grow the daemon's memory without bound, and healthy clients must still be served.

mod common;

use bytes::Bytes;
use common::{run, Daemon};
use sluice_client::*;
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use std::io::Write;
use std::time::Duration;

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn get_records_frame(iterator: &str, correlation_id: u64) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let request = Request::GetRecords(GetRecordsInput { shard_iterator: iterator.into(), ..Default::default() });
    sluice_protocol::native::encode_request(&mut fbb, correlation_id, &request).unwrap().to_vec()
}

#[test]
fn slow_readers_cannot_grow_memory_and_healthy_clients_are_served() {
    const SLOW_CONNECTIONS: usize = 32;
    const REQUESTS_PER_ROUND: usize = 200;
    let daemon = Daemon::start("unlimited", 2);
    let endpoint = daemon.endpoint();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let create = CreateStreamInput { stream_name: "big".into(), shard_count: Some(1), ..Default::default() };
        client.call(&create).await.unwrap();
        // About 12 MiB in the shard, so each GetRecords answer is a maximal 10 MiB frame.
        for _ in 0..12 {
            let put = PutRecordInput {
                stream_name: Some("big".into()),
                data: Bytes::from(vec![7u8; (1 << 20) - 64]),
                partition_key: Some("k".into()),
                ..Default::default()
            };
            client.call(&put).await.unwrap();
        }
        let request = GetShardIteratorInput {
            stream_name: Some("big".into()),
            stream_arn: None,
            shard_id: "shardId-000000000000".into(),
            shard_iterator_type: ShardIteratorType::TrimHorizon,
            starting_sequence_number: None,
            timestamp: None,
        };
        sender.send(client.call(&request).await.unwrap().shard_iterator.unwrap()).unwrap();
    });
    let iterator = receiver.recv().unwrap();
    let pid = daemon.pid();
    let baseline = rss_bytes(pid);

    // Slow readers: pipeline GetRecords for ~10 MiB answers each, and never read.
    let mut slow: Vec<std::net::TcpStream> =
        (0..SLOW_CONNECTIONS).map(|_| std::net::TcpStream::connect(daemon.addr).unwrap()).collect();
    let round = |slow: &mut Vec<std::net::TcpStream>, first_id: u64| {
        for stream in slow.iter_mut() {
            stream.set_nonblocking(true).unwrap();
            let frames: Vec<u8> =
                (0..REQUESTS_PER_ROUND as u64).flat_map(|i| get_records_frame(&iterator, first_id + i)).collect();
            // The server stops reading once its bounds are reached; what does not fit in the
            // socket buffers is simply not sent.
            let _ = stream.write(&frames);
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    round(&mut slow, 1);
    let after_first = rss_bytes(pid);
    for extra in 1..4u64 {
        round(&mut slow, 1 + extra * REQUESTS_PER_ROUND as u64);
        println!("rss after round {}: {} MiB", extra + 1, rss_bytes(pid) >> 20);
    }
    let after_second = rss_bytes(pid);
    // Each slow connection may hold one maximal answer plus its queue budget; nothing grows
    // with the number of requests sent beyond that. Unbounded, 4 x 6,400 pipelined requests
    // for 10 MiB answers would be 250 GiB.

    let per_connection = sluice_server::limits::RESPONSE_BYTES_QUEUED_PER_CONNECTION_MAX as u64 + (1 << 20);
    let bound = baseline + SLOW_CONNECTIONS as u64 * per_connection + (256 << 20);
    println!(
        "rss: baseline {} MiB, after {} pipelined GetRecords {} MiB, after {} {} MiB, bound {} MiB",
        baseline >> 20,
        SLOW_CONNECTIONS * REQUESTS_PER_ROUND,
        after_first >> 20,
        4 * SLOW_CONNECTIONS * REQUESTS_PER_ROUND,
        after_second >> 20,
        bound >> 20
    );
    assert!(after_second < bound, "daemon memory grew to {} MiB", after_second >> 20);

    // A healthy client is still served while the slow ones hang on.
    let endpoint = daemon.endpoint();
    run(move || async move {
        let client = Client::connect(&endpoint).await.unwrap();
        let put = PutRecordInput {
            stream_name: Some("big".into()),
            data: Bytes::from_static(b"ok"),
            partition_key: Some("k".into()),
            ..Default::default()
        };
        client.call(&put).await.unwrap();
        client.call(&DescribeLimitsInput {}).await.unwrap();
    });
    drop(slow);
}
