//! The lease balancer of one worker: which leases to take this round, as the KCL 2.x lease
//! taker (`DynamoDBLeaseTaker`) decides it, as a pure function of the lease table it sees.
//!
//! Each round a worker reads the whole lease table and:
//! 1. finds the leases it may take: unowned ones, and expired ones (owned, but the owner
//!    stopped renewing: [`LeaseView::expired`], which the caller judges, with
//!    [`ExpiryObserver`] when the lease store keeps expiry times as sluiced does). Finished
//!    leases (checkpoint SHARD_END) are not balanced. A child
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
    /// Incremented whenever the owner changes: the fencing token (in the KCL also by every
    /// renewal; in sluiced not, see [`ExpiryObserver`]).
    pub counter: u64,
    pub checkpoint: Checkpoint,
    pub parent_shard_ids: Vec<ShardId>,
    /// Owned, but its owner stopped renewing: the lease may be taken. The KCL judges this by
    /// watching the counter (bumped by every renewal) stand still for `failoverTimeMillis` on
    /// its own clock; sluiced keeps an expiry time on its own clock instead, and
    /// [`ExpiryObserver`] turns that into this flag. Taking the decision out of the taker keeps
    /// it a pure function of what the worker believes.
    pub expired: bool,
}

/// The lease taker's settings (KCL names in brackets). How long a lease lasts without renewal
/// (`failoverTimeMillis`) is the lease store's: sluiced keeps it per application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerConfig {
    /// Most leases one worker holds (`maxLeasesForWorker`, unlimited).
    pub max_leases_for_worker: usize,
    /// Most leases stolen in one round (`maxLeasesToStealAtOneTime`, 1).
    pub max_leases_to_steal_at_one_time: usize,
}

impl Default for BalancerConfig {
    fn default() -> BalancerConfig {
        BalancerConfig { max_leases_for_worker: usize::MAX, max_leases_to_steal_at_one_time: 1 }
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

fn expired(lease: &LeaseView) -> bool {
    lease.owner.is_some() && lease.expired
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
pub fn decide(table: &[LeaseView], me: &WorkerId, config: &BalancerConfig, rng: &mut impl Rng) -> Decision {
    let active: Vec<&LeaseView> = table.iter().filter(|l| l.checkpoint != Checkpoint::ShardEnd).collect();
    // Live leases per live worker; leases that anyone could take.
    let mut counts: BTreeMap<&WorkerId, Vec<&LeaseView>> = BTreeMap::new();
    let mut takeable: Vec<&LeaseView> = Vec::new();
    let mut blocked = 0usize;
    for lease in &active {
        match &lease.owner {
            Some(owner) if !expired(lease) => counts.entry(owner).or_default().push(lease),
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

/// Judges on this worker's clock whether leases have expired when the lease store keeps each
/// lease's expiry time on *its* clock (sluiced's `LeaseExpirationTimestamp`) and renewals do
/// not move the counter, so the KCL's "counter unchanged for `failoverTimeMillis`" never fires.
///
/// A lease counts as expired, owned and with either of:
/// - **observation** (needs no clock agreement): the lease's `(owner, counter, expiry)` has not
///   changed for a whole lease duration since this worker first saw it so. Every renewal moves
///   the expiry, and the worker first saw the current value after the renewal that set it, so
///   a lease duration later on any clock that ticks at the store's rate, the store's expiry
///   has passed. It costs at most one look-up interval more than the true expiry.
/// - **calibrated clock**: the expiry is before a lower bound of the store's clock now. Every
///   take or renewal of this worker answers an expiry of `applied + lease_duration` where
///   `applied` is the store's clock at some moment before the answer arrived, so the store's
///   clock minus the local one is at least `applied - received`;
///   [`ExpiryObserver::calibrate`] keeps the latest such bound. It lets a worker take a lease
///   whose owner died long before it looked (a restarted group) without waiting a further
///   lease duration.
///
/// Either can be wrong only towards "not yet expired", and the store itself refuses a take of
/// a lease that has not expired on its clock, so a lease is never taken early.
#[derive(Debug, Clone, Default)]
pub struct ExpiryObserver {
    /// Per lease: the owner, counter and expiry last seen, and when (local ms) it was first
    /// seen with those values.
    seen: BTreeMap<ShardId, (Option<WorkerId>, u64, Option<i64>, u64)>,
    /// A lower bound of (store clock - local clock), ms, from this worker's latest answer.
    offset_ms_min: Option<i64>,
}

impl ExpiryObserver {
    pub fn new() -> ExpiryObserver {
        ExpiryObserver::default()
    }

    /// A take, steal or renewal answered at local `received_ms` with the lease expiring at
    /// `expires_ms` (store clock), `lease_duration_ms` after the store applied it.
    pub fn calibrate(&mut self, received_ms: u64, expires_ms: i64, lease_duration_ms: i64) {
        let applied_ms = expires_ms.saturating_sub(lease_duration_ms);
        // The latest bound rather than the largest: after the store's clock stepped back, old
        // bounds would claim it is later than it is.
        self.offset_ms_min = Some(applied_ms.saturating_sub(received_ms as i64));
    }

    /// The lower bound of (store clock - local clock) in use, if any answer gave one.
    pub fn offset_ms_min(&self) -> Option<i64> {
        self.offset_ms_min
    }

    /// Whether the lease, as just listed at local `now_ms`, has expired (see the type's doc).
    /// Call it for every listed lease each round: it is what records the observations.
    pub fn expired(
        &mut self,
        shard_id: ShardId,
        owner: Option<&WorkerId>,
        counter: u64,
        expires_ms: Option<i64>,
        now_ms: u64,
        lease_duration_ms: i64,
    ) -> bool {
        let entry = self.seen.entry(shard_id).or_insert_with(|| (owner.cloned(), counter, expires_ms, now_ms));
        if entry.0.as_ref() != owner || entry.1 != counter || entry.2 != expires_ms {
            *entry = (owner.cloned(), counter, expires_ms, now_ms);
        }
        if owner.is_none() {
            return false;
        }
        let unchanged_ms = now_ms.saturating_sub(entry.3);
        let by_observation = unchanged_ms >= lease_duration_ms.max(0) as u64;
        let by_clock = match (expires_ms, self.offset_ms_min) {
            (Some(expires_ms), Some(offset_ms)) => expires_ms <= (now_ms as i64).saturating_add(offset_ms),
            _ => false,
        };
        by_observation || by_clock
    }

    /// Forgets leases no longer listed (a deleted application's, or expired shards').
    pub fn retain(&mut self, listed: &BTreeSet<ShardId>) {
        self.seen.retain(|shard, _| listed.contains(shard));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn lease(shard: u64, owner: Option<&str>, expired: bool) -> LeaseView {
        LeaseView {
            shard_id: ShardId(shard),
            owner: owner.map(|o| WorkerId(o.into())),
            counter: 1,
            checkpoint: Checkpoint::TrimHorizon,
            parent_shard_ids: vec![],
            expired,
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
        let table: Vec<_> = (0..4).map(|i| lease(i, None, false)).collect();
        let decision = decide(&table, &me(), &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take.len(), 4, "alone, it takes everything");
        let mut table = table;
        table.push(lease(9, Some("other"), false));
        table.push(lease(10, Some("other"), false));
        // 6 leases, 2 workers: target 3.
        let decision = decide(&table, &me(), &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take.len(), 3);
    }

    #[test]
    fn expired_leases_are_taken_before_anything_is_stolen() {
        let table = vec![lease(0, Some("dead"), true), lease(1, Some("live"), false), lease(2, Some("live"), false)];
        let decision = decide(&table, &me(), &BalancerConfig::default(), &mut rng());
        assert_eq!(decision, Decision { take: vec![(ShardId(0), 1)], steal: vec![] });
    }

    #[test]
    fn stealing_takes_one_lease_from_the_busiest_worker() {
        let mut table: Vec<_> = (0..6).map(|i| lease(i, Some("busy"), false)).collect();
        table.push(lease(6, Some("calm"), false));
        let decision = decide(&table, &me(), &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take, vec![]);
        assert_eq!(decision.steal.len(), 1);
        assert!(decision.steal[0].0 .0 < 6, "stolen from busy");
        // At target, a worker one below does not steal; two below does, one lease.
        let table: Vec<_> =
            (0..3).map(|i| lease(i, Some("a"), false)).chain((3..6).map(|i| lease(i, Some("b"), false))).collect();
        // 6 leases, 3 workers: target 2; a and b hold 3 each: steal 1.
        assert_eq!(decide(&table, &me(), &BalancerConfig::default(), &mut rng()).steal.len(), 1);
        let table: Vec<_> = (0..2)
            .map(|i| lease(i, Some("a"), false))
            .chain((2..4).map(|i| lease(i, Some("b"), false)))
            .chain([lease(4, Some("me"), false)])
            .collect();
        // 5 leases, 3 workers: target 2; me holds 1, needs 1, a and b at target: no steal.
        assert!(decide(&table, &me(), &BalancerConfig::default(), &mut rng()).is_empty());
    }

    #[test]
    fn children_wait_for_their_parents_shard_end() {
        let mut parent = lease(0, Some("me"), false);
        let mut child = lease(1, None, false);
        child.parent_shard_ids = vec![ShardId(0)];
        let table = vec![parent.clone(), child.clone()];
        let decision = decide(&table, &WorkerId("other".into()), &BalancerConfig::default(), &mut rng());
        assert!(decision.is_empty(), "the child is blocked and not counted: {decision:?}");
        parent.checkpoint = Checkpoint::ShardEnd;
        let table = vec![parent, child.clone()];
        let decision = decide(&table, &WorkerId("other".into()), &BalancerConfig::default(), &mut rng());
        assert_eq!(decision.take, vec![(ShardId(1), 1)]);
        // A parent gone from the table no longer blocks.
        assert!(parents_finished(&child, &[child.clone()]));
    }

    #[test]
    fn max_leases_for_worker_caps_the_target() {
        let table: Vec<_> = (0..10).map(|i| lease(i, None, false)).collect();
        let config = BalancerConfig { max_leases_for_worker: 3, ..BalancerConfig::default() };
        assert_eq!(decide(&table, &me(), &config, &mut rng()).take.len(), 3);
    }

    fn worker(name: &str) -> WorkerId {
        WorkerId(name.into())
    }

    #[test]
    fn expiry_by_observation_needs_a_whole_unchanged_lease_duration() {
        let mut observer = ExpiryObserver::new();
        let a = worker("a");
        // The store's clock is an hour ahead of ours: no calibration, observation only.
        let store_ms = |local_ms: u64| local_ms as i64 + 3_600_000;
        let expired = |o: &mut ExpiryObserver, now: u64, expires: i64| {
            o.expired(ShardId(0), Some(&a), 3, Some(expires), now, 1_000)
        };
        assert!(!expired(&mut observer, 0, store_ms(0) + 1_000), "first sight");
        assert!(!expired(&mut observer, 999, store_ms(0) + 1_000));
        // Renewed at 500 (store clock): the expiry moved, the observation starts again.
        assert!(!expired(&mut observer, 1_000, store_ms(500) + 1_000));
        assert!(!expired(&mut observer, 1_999, store_ms(500) + 1_000));
        assert!(expired(&mut observer, 2_000, store_ms(500) + 1_000), "unchanged for a lease duration");
        // An unowned lease is never expired, and a new owner resets the observation.
        assert!(!observer.expired(ShardId(0), None, 4, None, 5_000, 1_000));
        assert!(!observer.expired(ShardId(0), Some(&worker("b")), 5, Some(store_ms(5_000) + 1_000), 5_000, 1_000));
    }

    #[test]
    fn expiry_by_calibrated_clock_is_never_early_whatever_the_skew() {
        for skew_ms in [-3_600_000i64, -50, 0, 50, 3_600_000] {
            let store_ms = |local_ms: u64| local_ms as i64 + skew_ms;
            let mut observer = ExpiryObserver::new();
            // Our renewal left at local 100 and came back at local 130; the store applied it
            // at its clock's (local 120).
            observer.calibrate(130, store_ms(120) + 2_000, 2_000);
            assert!(observer.offset_ms_min().unwrap() <= skew_ms, "a lower bound");
            // A lease of a dead worker that expired at local 50, seen for the first time at
            // local 200: expired at once, no lease duration of observation needed.
            assert!(observer.expired(ShardId(1), Some(&worker("dead")), 7, Some(store_ms(50)), 200, 2_000));
            // A live lease expiring at local 1_000: not expired at local 969 (the bound is
            // 10 ms short of the truth, the answer's travel time), expired at 1_010.
            let live = |o: &mut ExpiryObserver, now: u64| {
                o.expired(ShardId(2), Some(&worker("live")), 7, Some(store_ms(1_000)), now, 2_000)
            };
            assert!(!live(&mut observer, 200));
            assert!(!live(&mut observer, 1_000));
            assert!(live(&mut observer, 1_010));
        }
    }

    #[test]
    fn forgotten_leases_start_a_new_observation() {
        let mut observer = ExpiryObserver::new();
        let a = worker("a");
        assert!(!observer.expired(ShardId(0), Some(&a), 1, Some(10), 0, 100));
        observer.retain(&BTreeSet::new());
        assert!(!observer.expired(ShardId(0), Some(&a), 1, Some(10), 150, 100), "seen anew at 150");
        assert!(observer.expired(ShardId(0), Some(&a), 1, Some(10), 250, 100));
    }
}
