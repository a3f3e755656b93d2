//! Property tests of both state machines against simple reference models, over a simulated
//! clock, with crashes (replay of the log from every snapshot) anywhere in the sequence.
//!
//! Queues: an acknowledged record is never delivered again; a receive returns only records the
//! model says are deliverable, and returns fewer than asked only when nothing else is; an
//! in-flight record whose timeout passed is delivered again; a record received MaxReceiveCount
//! times without acknowledgement becomes dead-letter; every per-entry answer is the model's;
//! replay rebuilds exactly the live state.
//!
//! Leases: every answer is the model's; no two workers ever hold one lease at the same
//! counter; a fenced owner never renews or checkpoints; checkpoints never move backwards;
//! a child is never taken before its parents reached SHARD_END.

mod sim;

use proptest::prelude::*;
use proptest::sample::Index;
use sim::{EntryFailure, Sim, STREAM};
use sluice_state::handle::{Delivery, Side};
use sluice_state::ids::{ApplicationId, ShardUid, WorkerId};
use sluice_state::lease::{Checkpoint, InitialPosition, LeaseCommand, LeaseError, LeaseReply, NewShard};
use sluice_state::queue::{DeadLetter, EntryError, QueueAttributes, QueueCommand, QueueLimits};
use sluice_state::state::Command;
use sluice_state::stream::StreamEvent;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// Queues

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Never,
    InFlight { side: Side, until_ms: i64 },
    Ready { side: Side },
    Acked,
}

#[derive(Debug, Clone, Copy)]
struct ModelRecord {
    arrival_ms: i64,
    status: Status,
    receive_count: u32,
    attempt: u32,
}

/// The queue as a flat map of every record ever written, with no windows or indexes.
struct QueueModel {
    records: BTreeMap<(u64, u64), ModelRecord>,
    max_receive_count: Option<u32>,
    retention_ms: i64,
}

impl QueueModel {
    fn expired(&self, record: &ModelRecord, now_ms: i64) -> bool {
        record.arrival_ms + self.retention_ms <= now_ms
    }

    fn advance(&mut self, now_ms: i64) {
        let max = self.max_receive_count;
        for record in self.records.values_mut() {
            if let Status::InFlight { side, until_ms } = record.status {
                if until_ms <= now_ms {
                    let dead = side == Side::Queue && max.is_some_and(|max| record.receive_count >= max);
                    record.status = Status::Ready { side: if dead { Side::DeadLetter } else { side } };
                }
            }
        }
    }

    fn deliverable(&self, record: &ModelRecord, side: Side, now_ms: i64) -> bool {
        !self.expired(record, now_ms)
            && match record.status {
                Status::Never => side == Side::Queue,
                Status::Ready { side: ready } => ready == side,
                Status::InFlight { .. } | Status::Acked => false,
            }
    }

    fn deliverable_set(&self, side: Side, now_ms: i64) -> BTreeSet<(u64, u64)> {
        self.records.iter().filter(|(_, r)| self.deliverable(r, side, now_ms)).map(|(k, _)| *k).collect()
    }

    fn side_of(record: &ModelRecord) -> Option<Side> {
        match record.status {
            Status::InFlight { side, .. } | Status::Ready { side } => Some(side),
            Status::Never | Status::Acked => None,
        }
    }

    /// What an entry of `api`'s side naming `delivery` answers, before its effect.
    fn check(&self, api: Side, delivery: &Delivery, now_ms: i64) -> Result<(), EntryFailure> {
        if delivery.side != api {
            return Err(EntryFailure::WrongApi);
        }
        let record = &self.records[&(delivery.shard.0, delivery.index.0)];
        if record.status == Status::Acked || self.expired(record, now_ms) {
            return Err(EntryFailure::Entry(EntryError::Gone));
        }
        if record.attempt != delivery.attempt {
            return Err(EntryFailure::Entry(EntryError::Stale { attempt: delivery.attempt, current: record.attempt }));
        }
        match (Self::side_of(record), api) {
            (Some(side), _) if side == api => Ok(()),
            (_, Side::Queue) => Err(EntryFailure::Entry(EntryError::DeadLetter)),
            (_, Side::DeadLetter) => Err(EntryFailure::Entry(EntryError::NotDeadLetter)),
        }
    }
}

#[derive(Debug, Clone)]
enum QueueOp {
    Put { shard: u64, count: usize },
    Advance { ms: i64 },
    Receive { dead: bool, limit: usize, visibility_s: Option<u32> },
    Acknowledge { dead: bool, picks: Vec<Index> },
    Visibility { dead: bool, pick: Index, seconds: u32 },
    Restore { pick: Index },
    Update { max_receive_count: Option<u32> },
    Trim,
    Snapshot,
    Crash,
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        3 => (1u64..=2, 1usize..=4).prop_map(|(shard, count)| QueueOp::Put { shard, count }),
        3 => prop_oneof![0i64..3_000, 0i64..20_000].prop_map(|ms| QueueOp::Advance { ms }),
        5 => (prop::bool::weighted(0.25), 1usize..=10, prop::option::of(0u32..12))
            .prop_map(|(dead, limit, visibility_s)| QueueOp::Receive { dead, limit, visibility_s }),
        3 => (prop::bool::weighted(0.25), prop::collection::vec(any::<Index>(), 1..=4))
            .prop_map(|(dead, picks)| QueueOp::Acknowledge { dead, picks }),
        2 => (prop::bool::weighted(0.25), any::<Index>(), 0u32..12)
            .prop_map(|(dead, pick, seconds)| QueueOp::Visibility { dead, pick, seconds }),
        1 => any::<Index>().prop_map(|pick| QueueOp::Restore { pick }),
        1 => prop::option::of(1u32..=3).prop_map(|max_receive_count| QueueOp::Update { max_receive_count }),
        1 => Just(QueueOp::Trim),
        1 => Just(QueueOp::Snapshot),
        1 => Just(QueueOp::Crash),
    ]
}

fn dead_letter(max_receive_count: Option<u32>) -> DeadLetter {
    max_receive_count.map_or(DeadLetter::None, |max_receive_count| DeadLetter::BuiltIn { max_receive_count })
}

fn run_queue(
    visibility_s: u32,
    max_receive_count: Option<u32>,
    limits: QueueLimits,
    ops: Vec<QueueOp>,
) -> Result<(), TestCaseError> {
    let retention_ms = 60_000;
    let attributes =
        QueueAttributes { visibility_timeout_s: visibility_s, dead_letter: dead_letter(max_receive_count) };
    let mut sim = Sim::with_queue(2, retention_ms, attributes);
    sim.limits = limits;
    let mut model = QueueModel { records: BTreeMap::new(), max_receive_count, retention_ms };
    let mut issued: Vec<(String, Delivery)> = Vec::new();
    let mut acknowledged: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut visibility_s = visibility_s;

    let receive = |sim: &mut Sim,
                   model: &mut QueueModel,
                   issued: &mut Vec<(String, Delivery)>,
                   acknowledged: &BTreeSet<(u64, u64)>,
                   side: Side,
                   limit: usize,
                   visibility: u32|
     -> Result<BTreeSet<(u64, u64)>, TestCaseError> {
        let now_ms = sim.now_ms;
        model.advance(now_ms);
        let received = sim.receive(side, limit, Some(visibility));
        prop_assert!(received.len() <= limit);
        let mut got = BTreeSet::new();
        for (record, handle) in received {
            let key = (record.delivery.shard.0, record.delivery.index.0);
            prop_assert!(!acknowledged.contains(&key), "acknowledged record {key:?} delivered again");
            prop_assert!(got.insert(key), "{key:?} twice in one receive");
            let before = *model.records.get(&key).expect("only written records are delivered");
            prop_assert!(model.deliverable(&before, side, now_ms), "{key:?} delivered on {side:?} while {before:?}");
            let modelled = model.records.get_mut(&key).expect("looked up above");
            modelled.receive_count += 1;
            modelled.attempt += 1;
            prop_assert_eq!(
                (record.receive_count, record.delivery.attempt),
                (modelled.receive_count, modelled.attempt)
            );
            modelled.status = Status::InFlight { side, until_ms: now_ms + i64::from(visibility) * 1000 };
            issued.push((handle, record.delivery));
        }
        if got.len() < limit {
            // Nothing deliverable was left behind, except new records of a shard whose window
            // (or the queue's) is full: back-pressure.
            let queue = sim.state.queues.queue(sim::QUEUE).unwrap();
            let queue_full = queue.window_len() >= sim.limits.window_records_max;
            let left: BTreeSet<_> = model
                .deliverable_set(side, now_ms)
                .into_iter()
                .filter(|key| {
                    let never = model.records[key].status == Status::Never;
                    let shard_full = queue
                        .shard(ShardUid(key.0))
                        .is_some_and(|shard| shard.records.len() >= sim.limits.window_records_per_shard_max);
                    !(never && (queue_full || shard_full))
                })
                .collect();
            prop_assert!(left.is_empty(), "a receive of {limit} returned {} and left {left:?}", got.len());
        }
        Ok(got)
    };

    for op in ops {
        let now_ms = sim.now_ms;
        match op {
            QueueOp::Put { shard, count } => {
                let first = sim.shards[&ShardUid(shard)].end();
                sim.put(shard, count);
                for index in first..first + count as u64 {
                    let record =
                        ModelRecord { arrival_ms: now_ms, status: Status::Never, receive_count: 0, attempt: 0 };
                    model.records.insert((shard, index), record);
                }
            }
            QueueOp::Advance { ms } => sim.advance(ms),
            QueueOp::Receive { dead, limit, visibility_s: per_call } => {
                let side = if dead { Side::DeadLetter } else { Side::Queue };
                receive(
                    &mut sim,
                    &mut model,
                    &mut issued,
                    &acknowledged,
                    side,
                    limit,
                    per_call.unwrap_or(visibility_s),
                )?;
            }
            QueueOp::Acknowledge { dead, picks } if !issued.is_empty() => {
                let side = if dead { Side::DeadLetter } else { Side::Queue };
                model.advance(now_ms);
                let chosen: Vec<(String, Delivery)> =
                    picks.iter().map(|pick| issued[pick.index(issued.len())].clone()).collect();
                let results = sim.acknowledge(side, &chosen.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>());
                for ((_, delivery), result) in chosen.iter().zip(results) {
                    let expected = match model.check(side, delivery, now_ms) {
                        Err(EntryFailure::Entry(EntryError::Gone)) => Ok(()),
                        other => other,
                    };
                    prop_assert_eq!(&result, &expected, "acknowledge {:?}", delivery);
                    if result.is_ok() {
                        let key = (delivery.shard.0, delivery.index.0);
                        model.records.get_mut(&key).unwrap().status = Status::Acked;
                        acknowledged.insert(key);
                    }
                }
            }
            QueueOp::Visibility { dead, pick, seconds } if !issued.is_empty() => {
                let side = if dead { Side::DeadLetter } else { Side::Queue };
                model.advance(now_ms);
                let (handle, delivery) = issued[pick.index(issued.len())].clone();
                let expected = model.check(side, &delivery, now_ms).and_then(|()| {
                    match model.records[&(delivery.shard.0, delivery.index.0)].status {
                        Status::InFlight { .. } => Ok(()),
                        _ => Err(EntryFailure::Entry(EntryError::NotInFlight)),
                    }
                });
                let result = sim.change_visibility(side, &[(handle, seconds)]).remove(0);
                prop_assert_eq!(&result, &expected, "visibility of {:?}", delivery);
                if result.is_ok() {
                    let until_ms = now_ms + i64::from(seconds) * 1000;
                    model.records.get_mut(&(delivery.shard.0, delivery.index.0)).unwrap().status =
                        Status::InFlight { side, until_ms };
                    model.advance(now_ms);
                }
            }
            QueueOp::Restore { pick } if !issued.is_empty() => {
                model.advance(now_ms);
                let (handle, delivery) = issued[pick.index(issued.len())].clone();
                let expected = model.check(Side::DeadLetter, &delivery, now_ms);
                let result = sim.restore(&[handle]).remove(0);
                prop_assert_eq!(&result, &expected, "restore of {:?}", delivery);
                if result.is_ok() {
                    let record = model.records.get_mut(&(delivery.shard.0, delivery.index.0)).unwrap();
                    record.status = Status::Ready { side: Side::Queue };
                    record.receive_count = 0;
                }
            }
            QueueOp::Update { max_receive_count } => {
                model.advance(now_ms);
                let config = dead_letter(max_receive_count);
                visibility_s = (visibility_s + 1) % 8;
                sim.append(Command::Queue(QueueCommand::UpdateQueue {
                    queue: sim::QUEUE,
                    visibility_timeout_s: Some(visibility_s),
                    dead_letter: Some(config),
                }));
                model.max_receive_count = max_receive_count;
                if let Some(max) = max_receive_count {
                    for record in model.records.values_mut() {
                        if record.status == (Status::Ready { side: Side::Queue }) && record.receive_count >= max {
                            record.status = Status::Ready { side: Side::DeadLetter };
                        }
                    }
                }
            }
            QueueOp::Trim => sim.trim(),
            QueueOp::Snapshot => sim.snapshot(),
            QueueOp::Crash => sim.crash(),
            QueueOp::Acknowledge { .. } | QueueOp::Visibility { .. } | QueueOp::Restore { .. } => {}
        }
        prop_assert!(sim.state.queues.queue(sim::QUEUE).unwrap().window_len() <= model.records.len());
    }

    // Let every visibility timeout end: every record in flight on the queue side that did not
    // become dead-letter and did not expire is delivered again (and every new record, once
    // acknowledgements make room in the windows). Dead-letter records hold window room until
    // acknowledged, so drain both sides in turns.
    sim.advance(13_000);
    let now_ms = sim.now_ms;
    model.advance(now_ms);
    let expected = [model.deliverable_set(Side::Queue, now_ms), model.deliverable_set(Side::DeadLetter, now_ms)];
    let mut drained = [BTreeSet::new(), BTreeSet::new()];
    loop {
        let mut progress = false;
        for (at, side) in [Side::Queue, Side::DeadLetter].into_iter().enumerate() {
            let before = issued.len();
            let got = receive(&mut sim, &mut model, &mut issued, &acknowledged, side, 10, 3_600)?;
            if got.is_empty() {
                continue;
            }
            progress = true;
            let handles: Vec<String> = issued[before..].iter().map(|(handle, _)| handle.clone()).collect();
            let results = sim.acknowledge(side, &handles);
            prop_assert!(results.iter().all(Result::is_ok), "{:?}", results);
            for (_, delivery) in &issued[before..] {
                let key = (delivery.shard.0, delivery.index.0);
                model.records.get_mut(&key).unwrap().status = Status::Acked;
                acknowledged.insert(key);
            }
            drained[at].extend(got);
        }
        if !progress {
            break;
        }
    }
    prop_assert_eq!(drained, expected);
    sim.crash();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn queues_follow_the_model(
        visibility_s in 0u32..8,
        max_receive_count in prop::option::of(1u32..=3),
        ops in prop::collection::vec(queue_op(), 1..70),
    ) {
        run_queue(visibility_s, max_receive_count, QueueLimits::default(), ops)?;
    }

    #[test]
    fn queues_with_small_windows_follow_the_model(
        visibility_s in 0u32..8,
        max_receive_count in prop::option::of(1u32..=3),
        ops in prop::collection::vec(queue_op(), 1..70),
    ) {
        let limits = QueueLimits { window_records_per_shard_max: 3, window_records_max: 5 };
        run_queue(visibility_s, max_receive_count, limits, ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Leases

const APP: ApplicationId = ApplicationId(3);
const WORKERS: usize = 3;
const LEASE_MS: i64 = 10_000;

#[derive(Debug, Clone)]
struct ModelLease {
    owner: Option<usize>,
    counter: u64,
    expires_ms: i64,
    checkpoint: Checkpoint,
    closed: bool,
    parents: Vec<u64>,
}

#[derive(Debug, Clone)]
enum LeaseOp {
    /// The worker lists the leases: what it remembers of owners and counters (and later uses,
    /// possibly stale, to take or steal).
    Observe {
        worker: usize,
    },
    Take {
        worker: usize,
        shard: Index,
    },
    /// `stale`: the worker uses the counter it last observed instead of the one it was
    /// granted (an earlier incarnation of a worker with the same id, restarted).
    Renew {
        worker: usize,
        shard: Index,
        stale: bool,
    },
    Release {
        worker: usize,
        shard: Index,
        stale: bool,
    },
    Steal {
        worker: usize,
        shard: Index,
    },
    Checkpoint {
        worker: usize,
        shard: Index,
        step: u8,
        shard_end: bool,
        stale: bool,
    },
    Advance {
        ms: i64,
    },
    Split,
    Snapshot,
    Crash,
}

fn lease_op() -> impl Strategy<Value = LeaseOp> {
    let worker = 0..WORKERS;
    prop_oneof![
        3 => worker.clone().prop_map(|worker| LeaseOp::Observe { worker }),
        3 => (worker.clone(), any::<Index>()).prop_map(|(worker, shard)| LeaseOp::Take { worker, shard }),
        2 => (worker.clone(), any::<Index>(), prop::bool::weighted(0.3))
            .prop_map(|(worker, shard, stale)| LeaseOp::Renew { worker, shard, stale }),
        1 => (worker.clone(), any::<Index>(), prop::bool::weighted(0.3))
            .prop_map(|(worker, shard, stale)| LeaseOp::Release { worker, shard, stale }),
        1 => (worker.clone(), any::<Index>()).prop_map(|(worker, shard)| LeaseOp::Steal { worker, shard }),
        4 => (worker, any::<Index>(), 0u8..3, prop::bool::weighted(0.2), prop::bool::weighted(0.3))
            .prop_map(|(worker, shard, step, shard_end, stale)| LeaseOp::Checkpoint { worker, shard, step, shard_end, stale }),
        3 => prop_oneof![0i64..4_000, 0i64..15_000].prop_map(|ms| LeaseOp::Advance { ms }),
        1 => Just(LeaseOp::Split),
        1 => Just(LeaseOp::Snapshot),
        1 => Just(LeaseOp::Crash),
    ]
}

fn worker_id(worker: usize) -> WorkerId {
    WorkerId::new(format!("worker-{worker}")).unwrap()
}

fn rank(checkpoint: Checkpoint) -> (u8, u128, u64) {
    match checkpoint {
        Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => (0, 0, 0),
        Checkpoint::Sequence { sequence_number, sub_sequence_number } => (1, sequence_number, sub_sequence_number),
        Checkpoint::ShardEnd => (2, 0, 0),
    }
}

type Seen = Vec<BTreeMap<u64, (Option<usize>, u64)>>;

/// The counter a worker names: the one it was granted, or (stale) the one it last observed.
fn counter_of(held: &[BTreeMap<u64, u64>], seen: &Seen, worker: usize, shard: u64, stale: bool) -> u64 {
    if stale {
        seen[worker].get(&shard).map_or(0, |&(_, counter)| counter)
    } else {
        held[worker].get(&shard).copied().unwrap_or(0)
    }
}

fn run_leases(ops: Vec<LeaseOp>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(1_000_000, 86_400_000);
    let shards = vec![
        NewShard { info: sim::shard_info(1, &[]), closed: false },
        NewShard { info: sim::shard_info(2, &[]), closed: false },
    ];
    sim.lease(LeaseCommand::CreateApplication {
        application: APP,
        name: "app".into(),
        stream: STREAM,
        initial_position: InitialPosition::TrimHorizon,
        lease_duration_ms: LEASE_MS,
        shards,
    })
    .unwrap();
    let fresh = |parents: Vec<u64>| ModelLease {
        owner: None,
        counter: 0,
        expires_ms: 0,
        checkpoint: Checkpoint::TrimHorizon,
        closed: false,
        parents,
    };
    let mut model: BTreeMap<u64, ModelLease> = [(1, fresh(vec![])), (2, fresh(vec![]))].into();
    // What each worker last saw of each lease (owner, counter), and what it believes it holds.
    let mut seen: Seen = vec![BTreeMap::new(); WORKERS];
    let mut held: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); WORKERS];
    let mut grants: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let mut progress: Vec<BTreeMap<u64, u128>> = vec![BTreeMap::new(); WORKERS];
    let mut split = false;

    for op in ops {
        let now_ms = sim.now_ms;
        let keys: Vec<u64> = model.keys().copied().collect();
        let pick = |index: &Index| keys[index.index(keys.len())];
        let outcome = match op {
            LeaseOp::Observe { worker } => {
                seen[worker] = model.iter().map(|(&shard, lease)| (shard, (lease.owner, lease.counter))).collect();
                None
            }
            LeaseOp::Take { worker, shard } => {
                let shard = pick(&shard);
                let counter = seen[worker].get(&shard).map_or(0, |&(_, counter)| counter);
                let lease = &model[&shard];
                let parents_done =
                    lease.parents.iter().all(|p| model.get(p).is_none_or(|p| p.checkpoint == Checkpoint::ShardEnd));
                let expected = lease.counter == counter
                    && (lease.owner.is_none() || lease.owner == Some(worker) || lease.expires_ms <= now_ms)
                    && parents_done;
                let result = sim.lease(LeaseCommand::Take {
                    application: APP,
                    shard: ShardUid(shard),
                    worker: worker_id(worker),
                    lease_counter: counter,
                });
                prop_assert_eq!(
                    result.is_ok(),
                    expected,
                    "take of {} by {} at {}: {:?}",
                    shard,
                    worker,
                    counter,
                    result
                );
                if !parents_done {
                    prop_assert!(result.is_err(), "a child was taken before its parents reached SHARD_END");
                }
                Some((shard, worker, result, true))
            }
            LeaseOp::Renew { worker, shard, stale } | LeaseOp::Release { worker, shard, stale } => {
                let shard = pick(&shard);
                let counter = counter_of(&held, &seen, worker, shard, stale);
                let lease = &model[&shard];
                let expected = lease.owner == Some(worker) && lease.counter == counter;
                let (application, shard_uid, who) = (APP, ShardUid(shard), worker_id(worker));
                let command = if matches!(op, LeaseOp::Renew { .. }) {
                    LeaseCommand::Renew { application, shard: shard_uid, worker: who, lease_counter: counter }
                } else {
                    LeaseCommand::Release { application, shard: shard_uid, worker: who, lease_counter: counter }
                };
                let result = sim.lease(command);
                prop_assert_eq!(result.is_ok(), expected, "{:?}: {:?}", op, result);
                if let Err(error) = &result {
                    prop_assert!(matches!(error, LeaseError::LeaseLost { .. }), "{:?}", error);
                }
                Some((shard, worker, result, false))
            }
            LeaseOp::Steal { worker, shard } => {
                let shard = pick(&shard);
                let Some(&(Some(owner), counter)) = seen[worker].get(&shard) else { continue };
                let lease = &model[&shard];
                let expected = lease.owner == Some(owner) && lease.counter == counter && owner != worker;
                let result = sim.lease(LeaseCommand::Steal {
                    application: APP,
                    shard: ShardUid(shard),
                    worker: worker_id(worker),
                    lease_owner: worker_id(owner),
                    lease_counter: counter,
                });
                prop_assert_eq!(result.is_ok(), expected, "steal of {} by {}: {:?}", shard, worker, result);
                Some((shard, worker, result, true))
            }
            LeaseOp::Checkpoint { worker, shard, step, shard_end, stale } => {
                let shard = pick(&shard);
                let counter = counter_of(&held, &seen, worker, shard, stale);
                let position = progress[worker].entry(shard).or_insert(0);
                *position += u128::from(step);
                let checkpoint = if shard_end {
                    Checkpoint::ShardEnd
                } else {
                    Checkpoint::Sequence { sequence_number: *position, sub_sequence_number: u64::from(step) }
                };
                let lease = &model[&shard];
                let expected = lease.owner == Some(worker)
                    && lease.counter == counter
                    && (checkpoint != Checkpoint::ShardEnd || lease.closed)
                    && rank(checkpoint) >= rank(lease.checkpoint);
                let result = sim.lease(LeaseCommand::Checkpoint {
                    application: APP,
                    shard: ShardUid(shard),
                    worker: worker_id(worker),
                    lease_counter: counter,
                    checkpoint,
                });
                prop_assert_eq!(
                    result.is_ok(),
                    expected,
                    "checkpoint {} of {} by {}: {:?}",
                    checkpoint,
                    shard,
                    worker,
                    result
                );
                if result.is_ok() {
                    model.get_mut(&shard).unwrap().checkpoint = checkpoint;
                }
                None
            }
            LeaseOp::Advance { ms } => {
                sim.advance(ms);
                None
            }
            LeaseOp::Split if !split => {
                split = true;
                sim.append(Command::Stream(StreamEvent::ShardsCreated {
                    stream: STREAM,
                    shards: vec![sim::shard_info(3, &[1]), sim::shard_info(4, &[1])],
                }));
                model.get_mut(&1).unwrap().closed = true;
                model.insert(3, fresh(vec![1]));
                model.insert(4, fresh(vec![1]));
                None
            }
            LeaseOp::Split => None,
            LeaseOp::Snapshot => {
                sim.snapshot();
                None
            }
            LeaseOp::Crash => {
                sim.crash();
                None
            }
        };
        if let Some((shard, worker, Ok(LeaseReply::Lease(lease)), grants_ownership)) = outcome {
            let modelled = model.get_mut(&shard).unwrap();
            modelled.owner = lease.owner.as_ref().map(|_| worker);
            modelled.expires_ms = lease.expires_ms;
            if grants_ownership {
                prop_assert_eq!(lease.counter, modelled.counter + 1);
                // No two workers ever hold one lease at the same counter.
                if let Some(previous) = grants.insert((shard, lease.counter), worker) {
                    prop_assert_eq!(previous, worker, "lease {} granted twice at counter {}", shard, lease.counter);
                }
                held[worker].insert(shard, lease.counter);
                prop_assert_eq!(lease.expires_ms, now_ms + LEASE_MS);
            } else if lease.owner.is_none() {
                prop_assert_eq!(lease.counter, modelled.counter + 1, "a release moves the counter");
                held[worker].remove(&shard);
            } else {
                prop_assert_eq!(lease.counter, modelled.counter, "a renewal keeps the counter");
            }
            modelled.counter = lease.counter;
        }
        // The state agrees with the model; checkpoints never moved backwards.
        let app = sim.state.leases.application(APP).unwrap();
        for (shard, modelled) in &model {
            let lease = &app.leases[&ShardUid(*shard)];
            prop_assert_eq!(lease.owner.clone(), modelled.owner.map(worker_id));
            prop_assert_eq!(lease.counter, modelled.counter);
            prop_assert_eq!(lease.checkpoint, modelled.checkpoint);
        }
    }
    sim.crash();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn leases_follow_the_model(ops in prop::collection::vec(lease_op(), 1..80)) {
        run_leases(ops)?;
    }
}
