//! The consumer core: a record processor's lifecycle, at-least-once delivery across a
//! takeover, and the lease balancer's convergence (model checks with proptest).

use bytes::Bytes;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sluice_kpl::aggregation::encode_aggregate;
use sluice_kpl::consumer::checkpoint::{Checkpoint, Position};
use sluice_kpl::consumer::lease::{decide, decided_shards, parents_finished, BalancerConfig, LeaseView, WorkerId};
use sluice_kpl::consumer::processor::*;
use sluice_kpl::consumer::records::{ConsumerRecord, ReceivedRecord};
use sluice_kpl::types::{SequenceNumber, ShardId};
use std::collections::{BTreeMap, BTreeSet};

/// What a processor saw, and when it checkpoints.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    seen: Vec<Position>,
    checkpoint_each_batch: bool,
    checkpoint_at_end: bool,
}

impl RecordProcessor for Recorder {
    fn initialize(&mut self, input: &InitializationInput) {
        self.events.push(format!("initialize {} {:?}", input.shard_id, input.checkpoint));
    }

    fn process_records(&mut self, records: &[ConsumerRecord], checkpointer: &mut Checkpointer<'_>) {
        self.events.push(format!("process {}", records.len()));
        self.seen.extend(records.iter().map(ConsumerRecord::position));
        if self.checkpoint_each_batch {
            checkpointer.checkpoint().unwrap();
        }
    }

    fn lease_lost(&mut self) {
        self.events.push("lease_lost".into());
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) {
        self.events.push("shard_ended".into());
        if self.checkpoint_at_end {
            checkpointer.checkpoint().unwrap();
        }
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) {
        self.events.push("shutdown_requested".into());
        checkpointer.checkpoint().unwrap();
    }
}

fn plain(sequence: u128) -> ReceivedRecord {
    ReceivedRecord {
        sequence_number: SequenceNumber::new(sequence),
        partition_key: format!("k{sequence}"),
        data: Bytes::from(sequence.to_be_bytes().to_vec()),
        approximate_arrival_ms: None,
    }
}

fn aggregated(sequence: u128, count: usize) -> ReceivedRecord {
    let data = encode_aggregate((0..count).map(|i| ("k", None, Bytes::from(vec![i as u8]))));
    ReceivedRecord {
        sequence_number: SequenceNumber::new(sequence),
        partition_key: "a".into(),
        data,
        approximate_arrival_ms: None,
    }
}

fn at(sequence: u128, sub: u64) -> Position {
    Position { sequence_number: SequenceNumber::new(sequence), sub_sequence_number: sub }
}

fn actions<P: RecordProcessor>(consumer: &mut ShardConsumer<P>) -> Vec<Action> {
    std::iter::from_fn(|| consumer.poll_action()).collect()
}

#[test]
fn a_shard_is_processed_checkpointed_and_ended() {
    let recorder = Recorder { checkpoint_each_batch: true, checkpoint_at_end: true, ..Recorder::default() };
    let mut consumer = ShardConsumer::new(ShardId(3), Checkpoint::TrimHorizon, recorder);
    assert!(matches!(consumer.on_records(vec![plain(1)], None), Err(LifecycleError::NotAllowed { .. })));
    assert_eq!(consumer.start().unwrap(), sluice_kpl::consumer::checkpoint::StartingPosition::TrimHorizon);
    consumer.on_records(vec![plain(1), aggregated(2, 3)], None).unwrap();
    assert_eq!(actions(&mut consumer), vec![Action::Checkpoint(Checkpoint::At(at(2, 2)))]);
    consumer.on_checkpoint_result(Checkpoint::At(at(2, 2)), Ok(()));
    // A re-read batch is not delivered again.
    consumer.on_records(vec![aggregated(2, 3)], None).unwrap();
    consumer.on_records(vec![plain(3)], None).unwrap();
    consumer.on_shard_end().unwrap();
    assert_eq!(
        actions(&mut consumer),
        vec![Action::Checkpoint(Checkpoint::At(at(3, 0))), Action::Checkpoint(Checkpoint::ShardEnd)]
    );
    assert_eq!(consumer.state(), ConsumerState::ShardEnded);
    consumer.on_checkpoint_result(Checkpoint::At(at(3, 0)), Ok(()));
    consumer.on_checkpoint_result(Checkpoint::ShardEnd, Ok(()));
    assert_eq!(actions(&mut consumer), vec![Action::ShardFinished]);
    assert_eq!(consumer.state(), ConsumerState::Finished);
    let recorder = consumer.processor();
    assert_eq!(
        recorder.events,
        ["initialize shardId-000000000003 TrimHorizon", "process 4", "process 1", "shard_ended"]
    );
    assert_eq!(recorder.seen, [at(1, 0), at(2, 0), at(2, 1), at(2, 2), at(3, 0)]);
}

#[test]
fn a_shard_end_without_the_checkpoint_is_refused_until_it_comes() {
    let mut consumer = ShardConsumer::new(ShardId(1), Checkpoint::TrimHorizon, Recorder::default());
    consumer.start().unwrap();
    assert_eq!(consumer.on_shard_end(), Err(LifecycleError::ShardEndNotCheckpointed));
    assert_eq!(consumer.state(), ConsumerState::Processing);
}

#[test]
fn resuming_from_a_checkpoint_inside_an_aggregate_skips_what_it_covers() {
    let mut consumer = ShardConsumer::new(ShardId(1), Checkpoint::At(at(2, 1)), Recorder::default());
    let start = consumer.start().unwrap();
    assert_eq!(
        start,
        sluice_kpl::consumer::checkpoint::StartingPosition::AtSequenceNumber {
            sequence_number: SequenceNumber::new(2),
            skip_through: at(2, 1)
        }
    );
    consumer.on_records(vec![aggregated(2, 4), plain(3)], None).unwrap();
    assert_eq!(consumer.processor().seen, [at(2, 2), at(2, 3), at(3, 0)]);
}

#[test]
fn a_lost_lease_stops_checkpoints_and_a_refused_one_means_lost() {
    let recorder = Recorder { checkpoint_each_batch: true, ..Recorder::default() };
    let mut consumer = ShardConsumer::new(ShardId(1), Checkpoint::TrimHorizon, recorder);
    consumer.start().unwrap();
    consumer.on_records(vec![plain(1)], None).unwrap();
    consumer.on_checkpoint_result(Checkpoint::At(at(1, 0)), Err(CheckpointRefused));
    assert_eq!(consumer.state(), ConsumerState::LeaseLost);
    assert!(actions(&mut consumer).is_empty(), "queued checkpoints are dropped");
    assert!(matches!(consumer.on_records(vec![plain(2)], None), Err(LifecycleError::NotAllowed { .. })));
    assert_eq!(consumer.processor().events.last().unwrap(), "lease_lost");
}

#[test]
fn shutdown_checkpoints_then_releases() {
    let mut consumer = ShardConsumer::new(ShardId(1), Checkpoint::TrimHorizon, Recorder::default());
    consumer.start().unwrap();
    consumer.on_records(vec![plain(1), plain(2)], None).unwrap();
    consumer.on_shutdown_requested().unwrap();
    assert_eq!(actions(&mut consumer), vec![Action::Checkpoint(Checkpoint::At(at(2, 0))), Action::ReleaseLease]);
    assert_eq!(consumer.state(), ConsumerState::ShutDown);
}

#[test]
fn checkpoints_asked_for_follow_the_rules() {
    struct Bad;
    impl RecordProcessor for Bad {
        fn initialize(&mut self, _: &InitializationInput) {}
        fn process_records(&mut self, records: &[ConsumerRecord], checkpointer: &mut Checkpointer<'_>) {
            let last = records.last().unwrap().position();
            let beyond = Position { sub_sequence_number: last.sub_sequence_number + 1, ..last.clone() };
            assert!(checkpointer.checkpoint_at(beyond).is_err(), "after the last delivered");
            checkpointer.checkpoint_at(last.clone()).unwrap();
            assert!(checkpointer.checkpoint_at(last).is_err(), "not after the last asked");
            assert!(checkpointer.checkpoint_at(records[0].position()).is_err());
        }
        fn lease_lost(&mut self) {}
        fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) {
            assert!(checkpointer
                .checkpoint_at(Position { sequence_number: SequenceNumber::new(1), sub_sequence_number: 0 })
                .is_err());
            checkpointer.checkpoint().unwrap();
        }
        fn shutdown_requested(&mut self, _: &mut Checkpointer<'_>) {}
    }
    let mut consumer = ShardConsumer::new(ShardId(1), Checkpoint::TrimHorizon, Bad);
    consumer.start().unwrap();
    consumer.on_records(vec![plain(1), plain(2)], None).unwrap();
    consumer.on_shard_end().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A worker processes batches, checkpointing every `interval` batches, and loses its lease
    /// after `crash_after` batches; the next owner resumes from the last confirmed checkpoint.
    /// Every record is processed, and the duplicates are at most the records of one interval.
    #[test]
    fn takeover_is_at_least_once_with_duplicates_bounded_by_the_interval(
        batches in proptest::collection::vec(proptest::collection::vec(1usize..4, 1..5), 1..20),
        interval in 1usize..5,
        crash_after in 0usize..20,
    ) {
        let mut sequence = 0u128;
        let batches: Vec<Vec<ReceivedRecord>> = batches
            .iter()
            .map(|sizes| sizes.iter().map(|&n| { sequence += 1; if n == 1 { plain(sequence) } else { aggregated(sequence, n) } }).collect())
            .collect();
        let all: BTreeSet<Position> = batches
            .iter()
            .flatten()
            .flat_map(|r| {
                let n = if r.partition_key == "a" { sluice_kpl::aggregation::deaggregate(&r.data).map(|d| match d { sluice_kpl::aggregation::Deaggregated::Aggregated(v) => v.len(), _ => 1 }).unwrap() } else { 1 };
                (0..n as u64).map(move |sub| Position { sequence_number: r.sequence_number.clone(), sub_sequence_number: sub })
            })
            .collect();

        // The first owner.
        let mut first = ShardConsumer::new(ShardId(0), Checkpoint::TrimHorizon, Recorder::default());
        first.start().unwrap();
        let mut durable = Checkpoint::TrimHorizon;
        // Batches and user records processed since the last durable checkpoint.
        let (mut batches_since, mut records_since) = (0, 0);
        let crash_after = crash_after.min(batches.len());
        for (i, batch) in batches.iter().take(crash_after).enumerate() {
            let before = first.processor().seen.len();
            first.on_records(batch.clone(), None).unwrap();
            batches_since += 1;
            records_since += first.processor().seen.len() - before;
            if (i + 1) % interval == 0 {
                first.checkpoint_processed().unwrap();
                for action in actions(&mut first) {
                    if let Action::Checkpoint(checkpoint) = action {
                        first.on_checkpoint_result(checkpoint.clone(), Ok(()));
                        durable = checkpoint;
                    }
                }
                (batches_since, records_since) = (0, 0);
            }
        }
        first.on_lease_lost();

        // The next owner reads the shard again from its starting position.
        let mut second = ShardConsumer::new(ShardId(0), durable, Recorder::default());
        second.start().unwrap();
        for batch in &batches {
            second.on_records(batch.clone(), None).unwrap();
        }
        let mut seen: Vec<Position> = first.processor().seen.clone();
        seen.extend(second.processor().seen.iter().cloned());
        let unique: BTreeSet<Position> = seen.iter().cloned().collect();
        prop_assert_eq!(&unique, &all, "every record processed");
        let duplicates = seen.len() - unique.len();
        prop_assert_eq!(duplicates, records_since, "the duplicates are what came after the last checkpoint");
        prop_assert!(batches_since < interval, "which is less than one checkpoint interval");
    }
}

// ---------------------------------------------------------------------------------------------
// The lease balancer, several workers, rounds of concurrent decisions.

struct Fleet {
    table: Vec<LeaseView>,
    /// Rounds each lease has been owned by its current owner, for parents reaching their end.
    owned_rounds: BTreeMap<ShardId, u32>,
    has_children: BTreeSet<ShardId>,
    live: Vec<WorkerId>,
    now_ms: u64,
    /// When each owned lease was last taken or renewed; it expires `FAILOVER_MS` later.
    renewed_ms: BTreeMap<ShardId, u64>,
}

/// How long a lease lasts without renewal in the fleet (the KCL's default failover time).
const FAILOVER_MS: u64 = 10_000;

impl Fleet {
    fn new(shard_count: usize, children: &[(usize, usize)], live: usize, ghost_owned: &[bool]) -> Fleet {
        let mut table: Vec<LeaseView> = (0..shard_count)
            .map(|i| LeaseView {
                shard_id: ShardId(i as u64),
                owner: ghost_owned.get(i).copied().unwrap_or(false).then(|| WorkerId("ghost".into())),
                counter: 1,
                checkpoint: Checkpoint::TrimHorizon,
                parent_shard_ids: vec![],
                expired: false,
            })
            .collect();
        let mut has_children = BTreeSet::new();
        for (n, &(parent, other_parent)) in children.iter().enumerate() {
            // A child of one or two earlier leases (a split, or a merge).
            let id = ShardId((shard_count + n) as u64);
            let limit = shard_count + n;
            if limit == 0 {
                continue;
            }
            let mut parents = vec![ShardId((parent % limit) as u64)];
            if other_parent % 3 == 0 && limit > 1 {
                let second = ShardId(((parent + 1) % limit) as u64);
                parents.push(second);
            }
            parents.dedup();
            has_children.extend(parents.iter().copied());
            table.push(LeaseView {
                shard_id: id,
                owner: None,
                counter: 1,
                checkpoint: Checkpoint::TrimHorizon,
                parent_shard_ids: parents,
                expired: false,
            });
        }
        let live = (0..live).map(|i| WorkerId(format!("w{i}"))).collect();
        Fleet { table, owned_rounds: BTreeMap::new(), has_children, live, now_ms: 0, renewed_ms: BTreeMap::new() }
    }

    fn round(&mut self, rng: &mut StdRng) {
        self.now_ms += 1_000;
        let config = BalancerConfig::default();
        // Live owners renew; a parent owned for two rounds reaches its end.
        for lease in &mut self.table {
            if lease.owner.as_ref().is_some_and(|o| self.live.contains(o)) {
                self.renewed_ms.insert(lease.shard_id, self.now_ms);
                let rounds = self.owned_rounds.entry(lease.shard_id).or_default();
                *rounds += 1;
                if *rounds >= 2 && self.has_children.contains(&lease.shard_id) {
                    lease.checkpoint = Checkpoint::ShardEnd;
                }
            }
        }
        // Expiry as every worker judges it (one clock here), then everyone decides on the same
        // snapshot, and the conditional updates race.
        for lease in &mut self.table {
            let renewed_ms = self.renewed_ms.get(&lease.shard_id).copied().unwrap_or(0);
            lease.expired = lease.owner.is_some() && self.now_ms.saturating_sub(renewed_ms) > FAILOVER_MS;
        }
        let snapshot = self.table.clone();
        let mut decisions: Vec<(WorkerId, Vec<(ShardId, u64)>)> = Vec::new();
        for worker in &self.live {
            let decision = decide(&snapshot, worker, &config, rng);
            let shards = decided_shards(&decision);
            assert_eq!(shards.len(), decision.take.len() + decision.steal.len(), "a lease named twice in one decision");
            for (shard, _) in decision.take.iter().chain(&decision.steal) {
                let lease = snapshot.iter().find(|l| l.shard_id == *shard).unwrap();
                assert!(parents_finished(lease, &snapshot), "{shard} chosen before its parents ended");
                assert_ne!(lease.owner.as_ref(), Some(worker), "{shard} taken from itself");
            }
            decisions.push((worker.clone(), decision.take.into_iter().chain(decision.steal).collect()));
        }
        decisions.shuffle(rng);
        let mut taken_this_round = BTreeSet::new();
        for (worker, wanted) in decisions {
            for (shard, counter) in wanted {
                let lease = self.table.iter_mut().find(|l| l.shard_id == shard).unwrap();
                if lease.counter == counter {
                    assert!(taken_this_round.insert(shard), "{shard} taken twice in one round");
                    lease.owner = Some(worker.clone());
                    lease.counter += 1;
                    self.renewed_ms.insert(shard, self.now_ms);
                    self.owned_rounds.insert(shard, 0);
                }
            }
        }
        // Safety: no child is owned while a parent in the table has not ended.
        for lease in &self.table {
            if lease.owner.is_some() && !lease.parent_shard_ids.is_empty() {
                assert!(parents_finished(lease, &self.table), "{} owned before its parents ended", lease.shard_id);
            }
        }
    }

    /// Live leases per live worker.
    fn spread(&self) -> Vec<usize> {
        self.live
            .iter()
            .map(|w| {
                self.table
                    .iter()
                    .filter(|l| l.owner.as_ref() == Some(w) && l.checkpoint != Checkpoint::ShardEnd)
                    .count()
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn workers_converge_to_a_fair_spread_and_children_wait_for_parents(
        shard_count in 0usize..24,
        children in proptest::collection::vec((0usize..100, 0usize..100), 0..10),
        live in 1usize..6,
        ghost_owned in proptest::collection::vec(any::<bool>(), 0..24),
        seed in any::<u64>(),
    ) {
        let mut fleet = Fleet::new(shard_count, &children, live, &ghost_owned);
        let mut rng = StdRng::seed_from_u64(seed);
        let leases = fleet.table.len();
        // Ghost-owned leases expire after the failover time (10 s); parents end two rounds
        // after they are taken; stealing moves one lease per worker per round.
        for _ in 0..(12 + 3 * leases) {
            fleet.round(&mut rng);
        }
        // Every lease that can be worked on is owned by a live worker.
        for lease in &fleet.table {
            if lease.checkpoint != Checkpoint::ShardEnd {
                let owner = lease.owner.clone().unwrap_or(WorkerId("nobody".into()));
                prop_assert!(fleet.live.contains(&owner), "{} held by {:?}", lease.shard_id, owner);
            }
        }
        let spread = fleet.spread();
        let (min, max) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
        prop_assert!(max - min <= 1, "unfair spread {:?}", spread);
        let _ = rng.gen::<u8>();
    }
}
