//! Leader balancing: each member should lead about its share of the shards' groups, so that
//! the work of leading (admitting writes, proposing, sending every entry to the followers) is
//! spread over the nodes. Elections alone do not spread it: after a node restarts, the
//! survivors keep every group they took over, and the restarted node leads nothing until
//! another failure (Kafka's preferred-leader election and Redpanda's leader balancer exist
//! for the same reason).
//!
//! Every [`LEADER_BALANCE_INTERVAL_MS`], one core of the node in turn reads the node's
//! [`LeaderTable`](crate::runtime::cluster::LeaderTable) (who leads each group, as every core
//! publishes it). If this node leads more than the mean (the groups with a leader over the
//! members) and the member leading fewest leads at least two fewer, the core asks some of the
//! groups it leads to hand their leadership to that member ([`transfer_plan`]: no more than
//! would bring either past the other or this node under the mean, that member's lack shared
//! with the other members over the mean, and at most [`LEADER_TRANSFERS_PER_TURN_MAX`]). The
//! replica does it only if that member is caught up in that group (raft-rs' leader transfer:
//! the member campaigns at once, without waiting for an election timeout); otherwise a later
//! turn tries another group. Every member runs the same rule, so the nodes over the mean give
//! groups to the nodes under it until each is within one of the others (each transfer brings
//! two counts at least two apart closer, so the sum of their squares falls until none are). The
//! metadata group is left where its election put it.
//!
//! Only the members this core's peer network is connected to take part: a member that is down
//! or cut off leads nothing, and would otherwise be the one every transfer goes to (and be
//! refused, as it is not caught up), so that nothing would move between the live members
//! until it returned. Without it, the groups a dead leader led spread over the survivors
//! (the routed-client test saw all six on one survivor, for good, once in a while).
//!
//! A group is moved only once it has been led for [`LEADER_BALANCE_SETTLE_MS`] here: a new
//! stream's first writes, right after AWS's waiters saw it ACTIVE, do not meet a handover.
//!
//! A transfer makes the group refuse proposals for a moment (at most an election timeout);
//! writes in flight get the retriable error of any leader change. Balancing never moves a
//! group whose new leader would lack entries, so it cannot lose or change a record.

use crate::limits::{LEADER_BALANCE_INTERVAL_MS, LEADER_BALANCE_SETTLE_MS, LEADER_TRANSFERS_PER_TURN_MAX};
use crate::ops::cluster::{ClusterCore, DELIVERY_GROUP, META_GROUP};
use crate::ops::node::Node;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Runs for the executor's life, like the groups.
pub async fn balance_leaders(node: Rc<Node>, core: Rc<ClusterCore>) {
    let node_id = core.config.node_id;
    let cores = node.shared.config.cores.max(1);
    let mut turn: usize = 0;
    // When this core first saw each of its groups led (a group younger than
    // `LEADER_BALANCE_SETTLE_MS` is not moved). The groups this node opened from its disk at
    // start-up are old ones: settled already.
    let settle = Duration::from_millis(LEADER_BALANCE_SETTLE_MS);
    let started = Instant::now().checked_sub(settle).unwrap_or_else(Instant::now);
    let mut first_led: HashMap<u64, Instant> = core.groups.borrow().keys().map(|&uid| (uid, started)).collect();
    let settled = |at: &Instant| at.elapsed() >= settle;
    loop {
        glommio::timer::sleep(Duration::from_millis(LEADER_BALANCE_INTERVAL_MS)).await;
        {
            let groups = core.groups.borrow();
            first_led.retain(|uid, _| groups.contains_key(uid));
            for (&uid, group) in groups.iter() {
                if group.host.leader() != 0 {
                    first_led.entry(uid).or_insert_with(Instant::now);
                }
            }
        }
        turn = turn.wrapping_add(1);
        if turn % cores != core.core {
            continue;
        }
        // The shards' groups only: the ones `led_groups` offers to move.
        let counts = node.shared.leaders.leader_counts(&[META_GROUP.0, DELIVERY_GROUP.0]);
        let members = crate::ops::cluster::members(&node);
        let live: Vec<u64> = members.keys().copied().filter(|&member| core.reaches(member)).collect();
        let Some((to, count)) = transfer_plan(node_id, &live, &counts) else { continue };
        let mut led = core.led_groups();
        led.retain(|group| first_led.get(&group.uid).is_some_and(settled));
        if led.is_empty() {
            continue;
        }
        led.sort_by_key(|group| group.uid);
        // Different groups each turn: the replica ignores a transfer to a member that is not
        // caught up in that group, and another group may have it caught up.
        let first = (turn / cores) % led.len();
        for group in led.iter().cycle().skip(first).take(count.min(led.len())) {
            tracing::debug!(shard = group.uid, to, "replication: handing the leadership over to balance leaders");
            group.host.transfer_leader(to);
            core.leadership.transfers_requested.set(core.leadership.transfers_requested.get() + 1);
        }
    }
}

/// The member this node should hand groups to, and how many, of the live `members`, from how
/// many groups each member leads (a member not in `members` leads none that count): the one
/// leading fewest (the lowest id among equals), if this node leads more than the mean and at
/// least two more than that member. As many groups as keep this node at or over the mean and
/// at or over that member, no more than that member lacks of the mean (rounded up) shared
/// among the members over the mean (rounded up: several may give at once, from the same
/// counts), and at most [`LEADER_TRANSFERS_PER_TURN_MAX`]; each of these is at least one when
/// this node gives at all (that member lacks some: were it at the mean rounded up, the members
/// would lead more groups than there are). `None`: leave things as they are.
fn transfer_plan(node_id: u64, members: &[u64], counts: &HashMap<u64, usize>) -> Option<(u64, usize)> {
    let led = |member: u64| if members.contains(&member) { counts.get(&member).copied().unwrap_or(0) } else { 0 };
    let total: usize = members.iter().map(|&member| led(member)).sum();
    let n = members.len().max(1);
    let over_mean = |member: u64| led(member) * n > total;
    let mine = led(node_id);
    let fewest =
        members.iter().copied().filter(|&member| member != node_id).min_by_key(|&member| (led(member), member))?;
    if !(over_mean(node_id) && mine >= led(fewest) + 2) {
        return None;
    }
    let givers = members.iter().filter(|&&member| over_mean(member)).count().max(1);
    let lacking = total.div_ceil(n).saturating_sub(led(fewest));
    let count = ((mine - led(fewest)) / 2)
        .min(mine - total / n)
        .min(lacking.div_ceil(givers))
        .min(LEADER_TRANSFERS_PER_TURN_MAX);
    Some((fewest, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(u64, usize)]) -> HashMap<u64, usize> {
        pairs.iter().copied().collect()
    }

    fn values(members: &[u64], led: &HashMap<u64, usize>) -> Vec<usize> {
        members.iter().map(|member| led.get(member).copied().unwrap_or(0)).collect()
    }

    /// One turn of every member at once, each from the same counts (as the members read their
    /// leader tables between two turns); true if anything moved.
    fn concurrent_turn(members: &[u64], led: &mut HashMap<u64, usize>) -> bool {
        let plans: Vec<(u64, u64, usize)> = members
            .iter()
            .filter_map(|&node| transfer_plan(node, members, led).map(|(to, count)| (node, to, count)))
            .collect();
        for &(node, to, count) in &plans {
            *led.get_mut(&node).unwrap() -= count;
            *led.entry(to).or_default() += count;
        }
        !plans.is_empty()
    }

    #[test]
    fn a_node_over_the_mean_gives_groups_to_the_member_leading_fewest() {
        // Node 1 restarted: 2 and 3 kept its groups.
        let after_restart = counts(&[(2, 3), (3, 3)]);
        assert_eq!(transfer_plan(2, &[1, 2, 3], &after_restart), Some((1, 1)));
        assert_eq!(transfer_plan(3, &[1, 2, 3], &after_restart), Some((1, 1)));
        assert_eq!(transfer_plan(1, &[1, 2, 3], &after_restart), None, "the node under the mean gives nothing");
        // More groups: each survivor gives the restarted member its part of the lack at once
        // (one at a time and only above the mean rounded up, the members stopped at 3, 5, 5
        // after three turns).
        let after_restart = counts(&[(2, 7), (3, 6)]);
        assert_eq!(transfer_plan(2, &[1, 2, 3], &after_restart), Some((1, 3)));
        assert_eq!(transfer_plan(3, &[1, 2, 3], &after_restart), Some((1, 2)));
    }

    #[test]
    fn a_dead_member_is_left_out_and_the_survivors_even_out() {
        // Node 2 died; node 1 took all its groups, and leads all six; node 3 leads none.
        let after_kill = counts(&[(1, 6), (3, 0)]);
        assert_eq!(transfer_plan(1, &[1, 2, 3], &after_kill), Some((2, 2)), "the dead member, if counted");
        assert_eq!(transfer_plan(1, &[1, 3], &after_kill), Some((3, 3)), "among the live ones");
        assert_eq!(transfer_plan(1, &[1, 3], &counts(&[(1, 3), (2, 9), (3, 3)])), None, "node 2's stale count");
    }

    #[test]
    fn within_one_of_each_other_nothing_moves() {
        for balanced in [counts(&[(1, 2), (2, 2), (3, 2)]), counts(&[(1, 3), (2, 2), (3, 2)]), counts(&[(1, 1)])] {
            for node in [1, 2, 3] {
                assert_eq!(transfer_plan(node, &[1, 2, 3], &balanced), None, "{balanced:?} at node {node}");
            }
        }
    }

    #[test]
    fn two_apart_with_none_over_the_ceiling_still_moves() {
        // 13 over 3: a rule that gives only above ceil(13 / 3) = 5 left 5, 5, 3 for good.
        let led = counts(&[(1, 5), (2, 5), (3, 3)]);
        assert_eq!(transfer_plan(1, &[1, 2, 3], &led), Some((3, 1)));
    }

    #[test]
    fn repeated_turns_converge_to_within_one() {
        type Case = (&'static [u64], &'static [(u64, usize)]);
        let cases: [Case; 5] = [
            (&[1, 2, 3, 4], &[(1, 10), (2, 1)]),
            (&[1, 2, 3], &[(2, 7), (3, 6)]),
            (&[1, 2, 3], &[(2, 250), (3, 250)]),
            (&[1, 2, 3, 4, 5], &[(1, 97), (2, 3), (3, 40)]),
            (&[1, 2], &[(1, 1000)]),
        ];
        for (members, start) in cases {
            let total: usize = start.iter().map(|(_, count)| count).sum();
            // Every member in turn, one after the other, each seeing the moves before it.
            let mut led = counts(start);
            for _ in 0..1000 {
                let mut moved = false;
                for &node in members {
                    if let Some((to, count)) = transfer_plan(node, members, &led) {
                        *led.get_mut(&node).unwrap() -= count;
                        *led.entry(to).or_default() += count;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            let sequential = values(members, &led);
            assert_eq!(sequential.iter().sum::<usize>(), total);
            assert!(
                sequential.iter().max().unwrap() - sequential.iter().min().unwrap() <= 1,
                "{start:?}: {sequential:?}"
            );
            // Every member at once, from the same counts: at most the turns the cap on each
            // turn's transfers asks for, and a few more for the overshoots of several givers.
            let mut led = counts(start);
            let mut turns = 0;
            while concurrent_turn(members, &mut led) {
                turns += 1;
                assert!(turns <= total / LEADER_TRANSFERS_PER_TURN_MAX + 10, "{start:?}: {:?}", values(members, &led));
            }
            let concurrent = values(members, &led);
            assert_eq!(concurrent.iter().sum::<usize>(), total);
            assert!(
                concurrent.iter().max().unwrap() - concurrent.iter().min().unwrap() <= 1,
                "{start:?}: {concurrent:?}"
            );
        }
    }
}
