//! The lease balancer of one worker: which leases to take this round, as the KCL 2.x lease
//! taker (`DynamoDBLeaseTaker`) decides it, as a pure function of the lease table it sees.
//!
//! Each round a worker reads the whole lease table and:
//! 1. finds the leases it may take: unowned ones, and expired ones (owned, but the lease
//!    counter has not moved for `failover_time_ms` as this worker observed it: the owner
//!    stopped renewing). Finished leases (checkpoint SHARD_END) are not balanced. A child
//!    lease is not takeable until every parent still in the table checkpointed SHARD_END, so
//!    a shard's records are processed after its parents' (the KCL enforces this in the shard
//!    consumer's `BlockOnParentShardTask`; here it is part of the decision, so a worker never
//!    holds a lease it cannot work on);
//! 2. counts the live leases of every worker (itself included), and sets
//!    `target = ceil(leases / workers)` (at least 1, at most `max_leases_for_worker`);
//! 3. if it holds fewer than `target`: takes takeable leases up to the target if there are
//!    any; otherwise steals from the most loaded worker: up to the excess over the target, at
//!    most `max_leases_to_steal_at_one_time` (1, the KCL default), and one lease even when the
//!    most loaded is exactly at target if this worker is two or more below it.
//!
//! The decision is applied by conditional updates on the lease store (the lease counter is
//! the condition), so two workers deciding on the same lease in one round cannot both get it.
//! Randomness (which of several expired leases, which lease to steal) comes from the caller's
//! RNG, so a round repeats.

use crate::consumer::checkpoint::Checkpoint;
use crate::types::ShardId;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// A worker of a consumer application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(pub String);

/// One lease as this worker sees it in the lease table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub shard_id: ShardId,
    pub owner: Option<WorkerId>,
    /// Incremented by every take, renewal and steal: the fencing token.
    pub counter: u64,
    pub checkpoint: Checkpoint,
    pub parent_shard_ids: Vec<ShardId>,
    /// When this worker last saw `counter` change (its own clock: leases expire by
    /// observation, not by comparing clocks across hosts, as in the KCL).
    pub counter_changed_ms: u64,
}

/// The lease taker's settings (KCL names in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerConfig {
    /// A lease whose counter did not move for this long is expired (`failoverTimeMillis`,
    /// 10 s).
    pub failover_time_ms: u64,
    /// Most leases one worker holds (`maxLeasesForWorker`, unlimited).
    pub max_leases_for_worker: usize,
    /// Most leases stolen in one round (`maxLeasesToStealAtOneTime`, 1).
    pub max_leases_to_steal_at_one_time: usize,
}

impl Default for BalancerConfig {
    fn default() -> BalancerConfig {
        BalancerConfig {
            failover_time_ms: 10_000,
            max_leases_for_worker: usize::MAX,
            max_leases_to_steal_at_one_time: 1,
        }
    }
}

/// What a worker decided in one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Unowned or expired leases to take, with the counter seen (the update's condition).
    pub take: Vec<(ShardId, u64)>,
    /// Leases to steal from live workers, with the counter seen.
    pub steal: Vec<(ShardId, u64)>,
}

impl Decision {
    pub fn is_empty(&self) -> bool {
        self.take.is_empty() && self.steal.is_empty()
    }
}

fn expired(lease: &LeaseView, now_ms: u64, config: &BalancerConfig) -> bool {
    lease.owner.is_some() && now_ms.saturating_sub(lease.counter_changed_ms) > config.failover_time_ms
}

/// Whether every parent of `lease` still in the table reached SHARD_END (a parent gone from
/// the table expired after its retention, long after it ended).
pub fn parents_finished(lease: &LeaseView, table: &[LeaseView]) -> bool {
    lease
        .parent_shard_ids
        .iter()
        .all(|parent| table.iter().find(|l| l.shard_id == *parent).is_none_or(|l| l.checkpoint == Checkpoint::ShardEnd))
}

/// The leases `me` should take or steal this round.
pub fn decide(
    table: &[LeaseView],
    me: &WorkerId,
    now_ms: u64,
    config: &BalancerConfig,
    rng: &mut impl Rng,
) -> Decision {
    let active: Vec<&LeaseView> = table.iter().filter(|l| l.checkpoint != Checkpoint::ShardEnd).collect();
    // Live leases per live worker; leases that anyone could take.
    let mut counts: BTreeMap<&WorkerId, Vec<&LeaseView>> = BTreeMap::new();
    let mut takeable: Vec<&LeaseView> = Vec::new();
    let mut blocked = 0usize;
    for lease in &active {
        match &lease.owner {
            Some(owner) if !expired(lease, now_ms, config) => counts.entry(owner).or_default().push(lease),
            _ if parents_finished(lease, table) => takeable.push(lease),
            _ => blocked += 1,
        }
    }
    counts.entry(me).or_default();
    // Leases waiting for their parents are left out of the balance: nobody can work on them.
    let lease_count = active.len() - blocked;
    let worker_count = counts.len();
    let target = if worker_count >= lease_count { 1 } else { lease_count.div_ceil(worker_count) };
    let target = target.min(config.max_leases_for_worker);
    let mine = counts[me].len();
    if mine >= target {
        return Decision::default();
    }
    let needed = target - mine;
    if !takeable.is_empty() {
        takeable.shuffle(rng);
        let take = takeable.iter().take(needed).map(|l| (l.shard_id, l.counter)).collect();
        return Decision { take, steal: Vec::new() };
    }
    // Steal from the most loaded worker (the first in worker order among equals).
    let Some((_, most_loaded)) = counts
        .iter()
        .filter(|(worker, _)| **worker != me)
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))
    else {
        return Decision::default();
    };
    let over_target = most_loaded.len().saturating_sub(target);
    let mut steal_count = needed.min(over_target);
    if steal_count == 0 && needed > 1 && most_loaded.len() >= target {
        steal_count = 1;
    }
    let steal_count = steal_count.min(config.max_leases_to_steal_at_one_time);
    let mut candidates: Vec<&&LeaseView> = most_loaded.iter().collect();
    candidates.shuffle(rng);
    let steal = candidates.iter().take(steal_count).map(|l| (l.shard_id, l.counter)).collect();
    Decision { take: Vec::new(), steal }
}

/// Shards whose leases `decision` names, for checks: never one twice.
pub fn decided_shards(decision: &Decision) -> BTreeSet<ShardId> {
    decision.take.iter().chain(&decision.steal).map(|(shard, _)| *shard).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn lease(shard: u64, owner: Option<&str>, changed_ms: u64) -> LeaseView {
        LeaseView {
            shard_id: ShardId(shard),
            owner: owner.map(|o| WorkerId(o.into())),
            counter: 1,
            checkpoint: Checkpoint::TrimHorizon,
            parent_shard_ids: vec![],
            counter_changed_ms: changed_ms,
        }
    }

    fn me() -> WorkerId {
        WorkerId("me".into())
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(1)
    }

    #[test]
    fn a_new_worker_takes_unowned_leases_up_to_its_share() {
        let table: Vec<_> = (0..4).map(|i| lease(i, None, 0)).collect();
        let decision = decide(&table, &me(), 0, &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take.len(), 4, "alone, it takes everything");
        let mut table = table;
        table.push(lease(9, Some("other"), 0));
        table.push(lease(10, Some("other"), 0));
        // 6 leases, 2 workers: target 3.
        let decision = decide(&table, &me(), 0, &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take.len(), 3);
    }

    #[test]
    fn expired_leases_are_taken_before_anything_is_stolen() {
        let table = vec![lease(0, Some("dead"), 0), lease(1, Some("live"), 20_000), lease(2, Some("live"), 20_000)];
        let decision = decide(&table, &me(), 20_001, &BalancerConfig::default(), &mut rng());
        assert_eq!(decision, Decision { take: vec![(ShardId(0), 1)], steal: vec![] });
    }

    #[test]
    fn stealing_takes_one_lease_from_the_busiest_worker() {
        let mut table: Vec<_> = (0..6).map(|i| lease(i, Some("busy"), 0)).collect();
        table.push(lease(6, Some("calm"), 0));
        let decision = decide(&table, &me(), 0, &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take, vec![]);
        assert_eq!(decision.steal.len(), 1);
        assert!(decision.steal[0].0 .0 < 6, "stolen from busy");
        // At target, a worker one below does not steal; two below does, one lease.
        let table: Vec<_> =
            (0..3).map(|i| lease(i, Some("a"), 0)).chain((3..6).map(|i| lease(i, Some("b"), 0))).collect();
        // 6 leases, 3 workers: target 2; a and b hold 3 each: steal 1.
        assert_eq!(decide(&table, &me(), 0, &BalancerConfig::default(), &mut rng()).steal.len(), 1);
        let table: Vec<_> = (0..2)
            .map(|i| lease(i, Some("a"), 0))
            .chain((2..4).map(|i| lease(i, Some("b"), 0)))
            .chain([lease(4, Some("me"), 0)])
            .collect();
        // 5 leases, 3 workers: target 2; me holds 1, needs 1, a and b at target: no steal.
        assert!(decide(&table, &me(), 0, &BalancerConfig::default(), &mut rng()).is_empty());
    }

    #[test]
    fn children_wait_for_their_parents_shard_end() {
        let mut parent = lease(0, Some("me"), 0);
        let mut child = lease(1, None, 0);
        child.parent_shard_ids = vec![ShardId(0)];
        let table = vec![parent.clone(), child.clone()];
        let decision = decide(&table, &WorkerId("other".into()), 0, &BalancerConfig::default(), &mut rng());
        assert!(decision.is_empty(), "the child is blocked and not counted: {decision:?}");
        parent.checkpoint = Checkpoint::ShardEnd;
        let table = vec![parent, child.clone()];
        let decision = decide(&table, &WorkerId("other".into()), 0, &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take, vec![(ShardId(1), 1)]);
        // A parent gone from the table no longer blocks.
        assert!(parents_finished(&child, &[child.clone()]));
    }

    #[test]
    fn max_leases_for_worker_caps_the_target() {
        let table: Vec<_> = (0..10).map(|i| lease(i, None, 0)).collect();
        let config = BalancerConfig { max_leases_for_worker: 3, ..BalancerConfig::default() };
        assert_eq!(decide(&table, &me(), 0, &config, &mut rng()).take.len(), 3);
    }
}
