//! Snapshots and replay: large states go out in parts, an incomplete snapshot is ignored, and
//! a log that lost entries or holds garbage is refused with the index named.

mod sim;

use sim::{Sim, STREAM};
use sluice_state::codec::{self, DecodeError};
use sluice_state::handle::Side;
use sluice_state::ids::{ApplicationId, LogIndex, ShardUid, WorkerId};
use sluice_state::lease::{InitialPosition, LeaseCommand, NewShard};
use sluice_state::limits::SNAPSHOT_PART_BYTES_MAX;
use sluice_state::log::{self, ReplayError, StartFrom};
use sluice_state::queue::QueueAttributes;
use sluice_state::state::Command;

/// A core with 4,000 leases held by workers with 256-byte ids, and a queue with 20,000
/// records in flight: megabytes of state.
fn large() -> Sim {
    let mut sim = Sim::with_queue(2, 3_600_000, QueueAttributes::default());
    sim.limits.window_records_per_shard_max = 20_000;
    let shards = (100..4_100).map(|uid| NewShard { info: sim::shard_info(uid, &[]), closed: false }).collect();
    sim.lease(LeaseCommand::CreateApplication {
        application: ApplicationId(1),
        name: "big".into(),
        stream: STREAM,
        initial_position: InitialPosition::Latest,
        lease_duration_ms: 10_000,
        shards,
    })
    .unwrap();
    for uid in 100..4_100 {
        let worker = WorkerId::new(format!("{uid:0>256}")).unwrap();
        sim.lease(LeaseCommand::Take { application: ApplicationId(1), shard: ShardUid(uid), worker, lease_counter: 0 })
            .unwrap();
    }
    sim.put(1, 10_000);
    sim.put(2, 10_000);
    while !sim.receive(Side::Queue, 10, None).is_empty() {}
    sim
}

#[test]
fn a_large_state_is_snapshotted_in_parts_that_each_fit_a_journal_record() {
    let mut sim = large();
    assert_eq!(sim.state.queues.queue(sim::QUEUE).unwrap().window_len(), 20_000);
    let parts = log::snapshot_entries(&sim.state);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for part in &parts {
        let bytes = codec::encode(part).unwrap().len();
        assert!(bytes <= SNAPSHOT_PART_BYTES_MAX + 64, "{bytes}");
    }
    sim.snapshot();
    // Commands between the parts and after them are replayed on top of the snapshot.
    sim.put(1, 1);
    sim.receive(Side::Queue, 10, None);
    sim.trim_log();
    let replayed = log::replay(&sim.decoded_log(), StartFrom::LatestSnapshot).unwrap();
    assert_eq!(replayed.replayed_count as usize, parts.len() + 1);
}

#[test]
fn an_incomplete_snapshot_is_ignored() {
    let mut sim = Sim::with_queue(1, 3_600_000, QueueAttributes::default());
    sim.put(1, 3);
    sim.receive(Side::Queue, 2, None);
    sim.snapshot();
    let complete = log::snapshots_in(&sim.decoded_log()).unwrap();
    sim.receive(Side::Queue, 2, None);
    // A second snapshot whose last part never made it (the core died while writing it).
    let mut parts = log::snapshot_entries(&sim.state);
    parts.push(parts[0].clone());
    if let Command::SnapshotPart(part) = &mut parts.last_mut().unwrap().command {
        part.part_count = 1;
    }
    let as_of = sim.state.applied().unwrap();
    let torn = parts.into_iter().map(|mut entry| {
        if let Command::SnapshotPart(part) = &mut entry.command {
            part.part_count = 2;
        }
        entry
    });
    sim.append(torn.take(1).next().unwrap().command);
    let decoded = sim.decoded_log();
    assert_eq!(log::snapshots_in(&decoded).unwrap(), complete);
    assert_eq!(log::replay(&decoded, StartFrom::Snapshot(as_of)), Err(ReplayError::SnapshotNotFound(as_of)));
    sim.crash();
}

#[test]
fn a_log_with_a_hole_or_garbage_or_no_beginning_is_refused() {
    let mut sim = Sim::with_queue(1, 3_600_000, QueueAttributes::default());
    sim.put(1, 3);
    sim.receive(Side::Queue, 2, None);
    sim.receive(Side::Queue, 2, None);
    let records: Vec<(LogIndex, Vec<u8>)> = sim.log.clone();
    let decode = |records: &[(LogIndex, Vec<u8>)]| log::decode_log(records.iter().map(|(i, b)| (*i, b.as_slice())));

    let mut holed = records.clone();
    holed.remove(2);
    let holed = decode(&holed).unwrap();
    assert_eq!(
        log::replay(&holed, StartFrom::LatestSnapshot),
        Err(ReplayError::Gap { expected: LogIndex(3), found: LogIndex(4) })
    );

    let mut garbage = records.clone();
    garbage[1].1 = vec![1, 0, 42];
    assert!(matches!(
        decode(&garbage),
        Err(ReplayError::Decode { index: LogIndex(2), source: DecodeError::Malformed(_) })
    ));

    let headless = decode(&records[1..]).unwrap();
    assert_eq!(log::replay(&headless, StartFrom::LatestSnapshot), Err(ReplayError::NoStart { first: LogIndex(2) }));

    // A snapshot whose parts were appended after another entry (X + 1), and a log trimmed to
    // start after that entry: the snapshot is complete but X + 1 is missing.
    let parts = log::snapshot_entries(&sim.state);
    let as_of = sim.state.applied().unwrap();
    sim.put(1, 1);
    sim.receive(Side::Queue, 2, None);
    for part in parts {
        sim.append(part.command);
    }
    let mut trimmed_too_far = sim.log.clone();
    trimmed_too_far.retain(|(index, _)| index.0 > as_of.0 + 1);
    let trimmed_too_far = decode(&trimmed_too_far).unwrap();
    assert_eq!(log::snapshots_in(&trimmed_too_far).unwrap(), vec![as_of]);
    assert_eq!(
        log::replay(&trimmed_too_far, StartFrom::LatestSnapshot),
        Err(ReplayError::Gap { expected: LogIndex(as_of.0 + 1), found: LogIndex(as_of.0 + 2) })
    );
    sim.crash();
}
