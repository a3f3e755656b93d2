//! Queue delivery state, scenario by scenario, through the simulated runtime (tests/sim): every
//! command goes through the codec and the log, and each test ends by replaying that log.

mod sim;

use sim::{EntryFailure, Sim, QUEUE};
use sluice_state::handle::{HandleError, Side};
use sluice_state::ids::{RecordIndex, ShardUid};
use sluice_state::queue::{
    DeadLetter, EntryError, EntryErrorKind, QueueAttributes, QueueCommand, QueueError, QueueLimits, QueueReply,
    Received,
};
use sluice_state::state::{Command, Outcome};

const HOUR_MS: i64 = 3_600_000;

fn attributes(visibility_timeout_s: u32, max_receive_count: Option<u32>) -> QueueAttributes {
    QueueAttributes {
        visibility_timeout_s,
        dead_letter: match max_receive_count {
            Some(max_receive_count) => DeadLetter::BuiltIn { max_receive_count },
            None => DeadLetter::None,
        },
    }
}

/// (shard, index) of what a receive returned, sorted.
fn positions(received: &[(Received, String)]) -> Vec<(u64, u64)> {
    let mut positions: Vec<(u64, u64)> =
        received.iter().map(|(r, _)| (r.delivery.shard.0, r.delivery.index.0)).collect();
    positions.sort();
    positions
}

fn handles(received: &[(Received, String)]) -> Vec<String> {
    received.iter().map(|(_, handle)| handle.clone()).collect()
}

#[test]
fn a_receive_returns_at_most_ten_records_and_defaults_apply() {
    let mut sim = Sim::with_queue(2, 24 * HOUR_MS, QueueAttributes::default());
    assert_eq!(QueueAttributes::default(), attributes(30, Some(6)));
    sim.put(1, 8);
    sim.put(2, 8);
    let first = sim.receive(Side::Queue, 10, None);
    assert_eq!(first.len(), 10);
    // Round robin over the shards: five from each.
    assert_eq!(first.iter().filter(|(r, _)| r.delivery.shard == ShardUid(1)).count(), 5);
    for (record, _) in &first {
        assert_eq!((record.receive_count, record.delivery.attempt, record.first_receive_ms), (1, 1, sim.now_ms));
    }
    assert_eq!(sim.receive(Side::Queue, 10, None).len(), 6);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    sim.crash();
}

#[test]
fn an_unacknowledged_record_comes_back_after_its_visibility_timeout() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 3);
    let first = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&first), vec![(1, 1), (1, 2), (1, 3)]);
    sim.acknowledge(Side::Queue, &handles(&first[..1]));
    sim.advance(29_999);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    sim.advance(1);
    let again = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&again), vec![(1, 2), (1, 3)]);
    for (record, _) in &again {
        assert_eq!((record.receive_count, record.delivery.attempt), (2, 2));
        assert_eq!(record.first_receive_ms, sim.now_ms - 30_000);
    }
    // The handles of the first delivery are stale now; the new ones work.
    let stale = sim.acknowledge(Side::Queue, &handles(&first[1..]));
    assert!(stale.iter().all(|r| matches!(r, Err(EntryFailure::Entry(EntryError::Stale { attempt: 1, current: 2 })))));
    assert_eq!(sim.acknowledge(Side::Queue, &handles(&again)), vec![Ok(()), Ok(())]);
    sim.advance(3_600_000);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    sim.crash();
}

#[test]
fn acknowledging_twice_succeeds_and_late_acknowledgement_counts_until_redelivery() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(10, None));
    sim.put(1, 2);
    let first = sim.receive(Side::Queue, 10, None);
    let ack = handles(&first[..1]);
    assert_eq!(sim.acknowledge(Side::Queue, &ack), vec![Ok(())]);
    assert_eq!(sim.acknowledge(Side::Queue, &ack), vec![Ok(())]);
    // The second record's timeout ended, but nobody received it again: its handle still works.
    sim.advance(60_000);
    assert_eq!(sim.acknowledge(Side::Queue, &handles(&first[1..])), vec![Ok(())]);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    sim.crash();
}

#[test]
fn visibility_can_be_extended_or_ended_at_once() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 2);
    let first = sim.receive(Side::Queue, 10, Some(5));
    let (a, b) = (first[0].1.clone(), first[1].1.clone());
    // A per-call visibility of 5 s; extend a to 60 s from now, end b's at once.
    assert_eq!(sim.change_visibility(Side::Queue, &[(a.clone(), 60), (b.clone(), 0)]), vec![Ok(()), Ok(())]);
    assert_eq!(positions(&sim.receive(Side::Queue, 10, Some(120))), vec![(1, 2)]);
    sim.advance(59_999);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    sim.advance(1);
    let again = sim.receive(Side::Queue, 10, Some(1));
    assert_eq!(positions(&again), vec![(1, 1)]);
    // b's handle is stale (b was received again); a's new delivery's visibility ends.
    assert!(matches!(
        sim.change_visibility(Side::Queue, &[(b, 9)])[0],
        Err(EntryFailure::Entry(EntryError::Stale { .. }))
    ));
    sim.advance(1_000);
    let not_in_flight = sim.change_visibility(Side::Queue, &[(again[0].1.clone(), 9)]);
    assert_eq!(not_in_flight, vec![Err(EntryFailure::Entry(EntryError::NotInFlight))]);
    assert_eq!(EntryError::NotInFlight.kind(), EntryErrorKind::InvalidArgument);
    sim.crash();
}

#[test]
fn a_record_received_max_receive_count_times_becomes_dead_letter_and_restore_resets_it() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(10, Some(2)));
    sim.put(1, 1);
    for receive in 1..=2 {
        let got = sim.receive(Side::Queue, 10, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.receive_count, receive);
        // Still on the queue side while in flight: a dead-letter receive finds nothing.
        assert!(sim.receive(Side::DeadLetter, 10, None).is_empty());
        sim.advance(10_000);
    }
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    let dead = sim.receive(Side::DeadLetter, 10, Some(5));
    assert_eq!(positions(&dead), vec![(1, 1)]);
    assert_eq!((dead[0].0.receive_count, dead[0].0.delivery.attempt), (3, 3));
    // A dead-letter handle is refused by the queue-side operations, and the other way round.
    assert_eq!(sim.acknowledge(Side::Queue, &handles(&dead)), vec![Err(EntryFailure::WrongApi)]);
    // Its dead-letter visibility ends: it comes back on the dead-letter side only.
    sim.advance(5_000);
    assert!(sim.receive(Side::Queue, 10, None).is_empty());
    let dead = sim.receive(Side::DeadLetter, 10, None);
    assert_eq!(dead[0].0.delivery.attempt, 4);
    assert_eq!(sim.restore(&handles(&dead)), vec![Ok(())]);
    assert!(sim.receive(Side::DeadLetter, 10, None).is_empty());
    let restored = sim.receive(Side::Queue, 10, None);
    assert_eq!(restored[0].0.receive_count, 1, "restore resets the receive count");
    assert_eq!(sim.restore(&handles(&restored)), vec![Err(EntryFailure::WrongApi)]);
    assert_eq!(sim.acknowledge(Side::Queue, &handles(&restored)), vec![Ok(())]);
    sim.crash();
}

#[test]
fn a_late_queue_side_acknowledgement_of_a_dead_letter_record_is_refused() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(10, Some(1)));
    sim.put(1, 1);
    let got = sim.receive(Side::Queue, 10, None);
    sim.advance(10_000);
    let refused = sim.acknowledge(Side::Queue, &handles(&got));
    assert_eq!(refused, vec![Err(EntryFailure::Entry(EntryError::DeadLetter))]);
    let dead = sim.receive(Side::DeadLetter, 10, None);
    assert_eq!(sim.acknowledge(Side::DeadLetter, &handles(&dead)), vec![Ok(())]);
    assert!(sim.receive(Side::DeadLetter, 10, None).is_empty());
    sim.crash();
}

#[test]
fn without_dead_letter_handling_records_come_back_forever() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(1, None));
    sim.put(1, 1);
    for receive in 1..=20 {
        let got = sim.receive(Side::Queue, 10, None);
        assert_eq!(got[0].0.receive_count, receive);
        sim.advance(1_000);
    }
    assert!(sim.receive(Side::DeadLetter, 10, None).is_empty());
}

#[test]
fn lowering_max_receive_count_dead_letters_visible_records_at_once() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(1, Some(10)));
    sim.put(1, 2);
    sim.receive(Side::Queue, 10, None);
    sim.advance(1_000);
    sim.receive(Side::Queue, 1, None); // record 1 in flight for its second time
    let update = QueueCommand::UpdateQueue {
        queue: QUEUE,
        visibility_timeout_s: Some(7),
        dead_letter: Some(DeadLetter::BuiltIn { max_receive_count: 1 }),
    };
    assert_eq!(sim.append(Command::Queue(update)), Outcome::Queue(Ok(QueueReply::Updated)));
    assert_eq!(positions(&sim.receive(Side::DeadLetter, 10, None)), vec![(1, 2)]);
    sim.advance(1_000);
    let dead = sim.receive(Side::DeadLetter, 10, None);
    assert_eq!(positions(&dead), vec![(1, 1)]);
    sim.crash();
}

#[test]
fn records_past_retention_are_not_delivered_and_leave_the_window() {
    let mut sim = Sim::with_queue(1, HOUR_MS, attributes(30, None));
    sim.put(1, 2);
    let got = sim.receive(Side::Queue, 1, None);
    sim.advance(HOUR_MS - 1);
    sim.put(1, 1);
    sim.advance(1);
    // Record 1 (in the window) and record 2 (never delivered) expired; record 3 did not.
    let late = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&late), vec![(1, 3)]);
    assert_eq!(sim.state.queues.queue(QUEUE).unwrap().window_len(), 1);
    // Acknowledging an expired record succeeds (it will not come back); changing its
    // visibility says it is gone.
    assert_eq!(sim.acknowledge(Side::Queue, &handles(&got)), vec![Ok(())]);
    let gone = sim.change_visibility(Side::Queue, &[(got[0].1.clone(), 5)]);
    assert_eq!(gone, vec![Err(EntryFailure::Entry(EntryError::Gone))]);
    assert_eq!(EntryError::Gone.kind(), EntryErrorKind::ResourceNotFound);
    sim.crash();
}

#[test]
fn records_trimmed_before_the_queue_reached_them_are_skipped() {
    let mut sim = Sim::with_queue(1, HOUR_MS, attributes(30, None));
    sim.put(1, 5);
    sim.advance(HOUR_MS);
    sim.put(1, 2);
    sim.trim();
    assert_eq!(sim.shards[&ShardUid(1)].first_retained, 6);
    assert_eq!(positions(&sim.receive(Side::Queue, 10, None)), vec![(1, 6), (1, 7)]);
    assert_eq!(sim.state.queues.queue(QUEUE).unwrap().shard(ShardUid(1)).unwrap().cursor, RecordIndex(8));
    sim.crash();
}

#[test]
fn a_full_window_holds_back_new_records_but_not_redeliveries() {
    let mut sim = Sim::with_queue(2, 24 * HOUR_MS, attributes(10, None));
    sim.limits = QueueLimits { window_records_per_shard_max: 3, window_records_max: 5 };
    sim.put(1, 10);
    sim.put(2, 10);
    let first = sim.receive(Side::Queue, 10, None);
    assert_eq!(first.len(), 5, "the queue's window holds 5");
    assert!(sim.receive(Side::Queue, 10, None).is_empty(), "back-pressure: nothing new until acknowledgements");
    sim.acknowledge(Side::Queue, &handles(&first[..2]));
    assert_eq!(sim.receive(Side::Queue, 10, None).len(), 2);
    sim.advance(10_000);
    // The five in flight come back; the window is full, so no new record joins them.
    assert_eq!(sim.receive(Side::Queue, 10, None).len(), 5);
    let per_shard = |sim: &Sim, uid| sim.state.queues.queue(QUEUE).unwrap().shard(ShardUid(uid)).unwrap().records.len();
    assert!(per_shard(&sim, 1) <= 3 && per_shard(&sim, 2) <= 3);
    sim.crash();
}

#[test]
fn children_are_delivered_after_their_parent_was_delivered_once() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 12);
    sim.split(1, [2, 3]);
    sim.put(2, 1);
    sim.put(3, 1);
    let first = sim.receive(Side::Queue, 10, None);
    assert!(first.iter().all(|(r, _)| r.delivery.shard == ShardUid(1)));
    let second = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&second), vec![(1, 11), (1, 12)], "the parent's last records first");
    let third = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&third), vec![(2, 1), (3, 1)]);
    // The parent is kept while records of it are unacknowledged, and dropped after.
    assert!(sim.state.queues.queue(QUEUE).unwrap().shard(ShardUid(1)).is_some());
    sim.acknowledge(Side::Queue, &handles(&first));
    sim.acknowledge(Side::Queue, &handles(&second));
    sim.receive(Side::Queue, 10, None);
    assert!(sim.state.queues.queue(QUEUE).unwrap().shard(ShardUid(1)).is_none());
    sim.crash();
}

#[test]
fn concurrent_receives_choose_different_records_and_a_failed_one_loses_nothing() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 6);
    let queue = sim.state.queues.queue(QUEUE).unwrap().clone();
    let all = {
        let mut offered = sluice_state::queue::Offered::default();
        for index in 1..=6 {
            offered.records.push(sluice_state::queue::OfferedRecord {
                shard: ShardUid(1),
                index: RecordIndex(index),
                arrival_ms: 1_000_000,
            });
        }
        offered.horizons.push(sluice_state::queue::ShardHorizon {
            shard: ShardUid(1),
            from: RecordIndex(0),
            first_available: RecordIndex(1),
        });
        offered
    };
    let first = queue.select(Side::Queue, sim.now_ms, 3, None, &sim.limits, &sim.reserved, &all);
    sim.reserved.reserve(&first);
    // The second selection starts after the first's records (its horizon is from index 4).
    let mut rest = all.clone();
    rest.horizons[0] =
        sluice_state::queue::ShardHorizon { shard: ShardUid(1), from: RecordIndex(4), first_available: RecordIndex(4) };
    let second = queue.select(Side::Queue, sim.now_ms, 3, None, &sim.limits, &sim.reserved, &rest);
    sim.reserved.reserve(&second);
    let chosen = |command: &QueueCommand| match command {
        QueueCommand::Receive { records, .. } => records.iter().map(|r| r.index.0).collect::<Vec<_>>(),
        _ => unreachable!(),
    };
    assert_eq!((chosen(&first), chosen(&second)), (vec![1, 2, 3], vec![4, 5, 6]));
    // The first receive's commit fails: it is never applied. The second applies and
    // delivers nothing (its records are not the next ones); nothing is lost.
    sim.reserved.release(&first);
    let outcome = sim.append(Command::Queue(second.clone()));
    sim.reserved.release(&second);
    assert_eq!(outcome, Outcome::Queue(Ok(QueueReply::Received(vec![]))));
    assert_eq!(positions(&sim.receive(Side::Queue, 10, None)), (1..=6).map(|i| (1, i)).collect::<Vec<_>>());
    sim.crash();
}

#[test]
fn forged_and_foreign_handles_are_refused_before_the_log() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 1);
    let got = sim.receive(Side::Queue, 10, None);
    let mut forged = got[0].1.clone();
    forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
    let log_len = sim.log.len();
    let results = sim.acknowledge(Side::Queue, &[forged, "not a handle".into()]);
    assert_eq!(
        results,
        vec![Err(EntryFailure::Handle(HandleError::Malformed)), Err(EntryFailure::Handle(HandleError::Malformed))]
    );
    assert_eq!(sim.log.len(), log_len, "nothing was logged");
    assert_eq!(sim.key().verify(sluice_state::ids::QueueId(8), &got[0].1), Err(HandleError::OtherQueue));
}

#[test]
fn a_deleted_queue_answers_not_found() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    assert_eq!(
        sim.append(Command::Queue(QueueCommand::DeleteQueue { queue: QUEUE })),
        Outcome::Queue(Ok(QueueReply::Deleted))
    );
    let again = sim.append(Command::Queue(QueueCommand::DeleteQueue { queue: QUEUE }));
    assert_eq!(again, Outcome::Queue(Err(QueueError::QueueNotFound(QUEUE))));
    sim.crash();
}

#[test]
fn snapshots_bound_replay_and_the_log_before_them_can_go() {
    let mut sim = Sim::with_queue(3, 24 * HOUR_MS, attributes(5, Some(3)));
    let mut kept = Vec::new();
    for round in 0..40 {
        sim.put(round % 3 + 1, 4);
        let got = sim.receive(Side::Queue, 10, None);
        // Acknowledge two thirds, keep the rest unacknowledged.
        let (ack, keep): (Vec<_>, Vec<_>) = got.into_iter().enumerate().partition(|(i, _)| i % 3 != 0);
        sim.acknowledge(Side::Queue, &ack.into_iter().map(|(_, (_, h))| h).collect::<Vec<_>>());
        kept.extend(keep);
        sim.advance(2_000);
        if round % 10 == 9 {
            sim.snapshot();
        }
    }
    sim.receive(Side::DeadLetter, 10, None);
    let before = sim.log.len();
    sim.trim_log();
    assert!(sim.log.len() < before / 3, "{} of {before} entries are left", sim.log.len());
    sim.put(1, 1);
    sim.receive(Side::Queue, 10, None);
    sim.crash();
    assert!(!kept.is_empty());
}

#[test]
fn stream_events_reach_the_queue() {
    use sluice_state::stream::StreamEvent;
    let mut sim = Sim::with_queue(2, 24 * HOUR_MS, attributes(30, None));
    sim.put(1, 2);
    sim.put(2, 2);
    let got = sim.receive(Side::Queue, 10, None);
    assert_eq!(got.len(), 4);
    // A shorter retention: the records now past it leave the window at the next command.
    sim.advance(2 * HOUR_MS);
    sim.append(Command::Stream(StreamEvent::RetentionChanged { stream: sim::STREAM, retention_ms: HOUR_MS }));
    assert_eq!(sim.state.queues.queue(QUEUE).unwrap().window_len(), 0);
    sim.put(1, 1);
    sim.put(2, 1);
    let fresh = sim.receive(Side::Queue, 10, None);
    assert_eq!(positions(&fresh), vec![(1, 3), (2, 3)]);
    // Shard 2's records all expire (as the catalog would say once it expires closed shards):
    // its queue state goes; its handles are gone.
    sim.append(Command::Stream(StreamEvent::ShardsExpired { stream: sim::STREAM, shards: vec![ShardUid(2)] }));
    assert!(sim.state.queues.queue(QUEUE).unwrap().shard(ShardUid(2)).is_none());
    let shard_2: Vec<String> =
        fresh.iter().filter(|(r, _)| r.delivery.shard == ShardUid(2)).map(|(_, h)| h.clone()).collect();
    assert_eq!(
        sim.change_visibility(Side::Queue, &[(shard_2[0].clone(), 1)]),
        vec![Err(EntryFailure::Entry(EntryError::Gone))]
    );
    assert_eq!(sim.acknowledge(Side::Queue, &shard_2), vec![Ok(())]);
    // Deleting the stream deletes what is left.
    sim.append(Command::Stream(StreamEvent::StreamDeleted { stream: sim::STREAM }));
    assert!(sim.state.queues.queue(QUEUE).is_none());
    sim.crash();
}

#[test]
fn the_next_deadline_is_the_earliest_visibility_timeout() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    assert_eq!(sim.state.queues.queue(QUEUE).unwrap().next_deadline_ms(), None);
    sim.put(1, 2);
    sim.receive(Side::Queue, 1, Some(50));
    sim.receive(Side::Queue, 1, Some(20));
    assert_eq!(sim.state.queues.queue(QUEUE).unwrap().next_deadline_ms(), Some(sim.now_ms + 20_000));
}

#[test]
fn tags_are_kept_bounded_snapshotted_and_replayed() {
    let mut sim = Sim::with_queue(1, 24 * HOUR_MS, attributes(30, None));
    let tag = |tags: Vec<(&str, &str)>| {
        Command::Queue(QueueCommand::Tag {
            queue: QUEUE,
            tags: tags.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        })
    };
    assert_eq!(sim.append(tag(vec![("team", "orders"), ("tier", "1")])), Outcome::Queue(Ok(QueueReply::Tagged)));
    assert_eq!(sim.append(tag(vec![("tier", "2")])), Outcome::Queue(Ok(QueueReply::Tagged)), "overwrites");
    let untag = Command::Queue(QueueCommand::Untag { queue: QUEUE, keys: vec!["team".into(), "absent".into()] });
    assert_eq!(sim.append(untag), Outcome::Queue(Ok(QueueReply::Tagged)));
    let tags = |sim: &Sim| sim.state.queues.queue(QUEUE).unwrap().tags.clone();
    assert_eq!(tags(&sim).into_iter().collect::<Vec<_>>(), vec![("tier".to_owned(), "2".to_owned())]);
    // Fifty in all at most: a command that would pass it changes nothing.
    let many: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    let refused = sim.append(Command::Queue(QueueCommand::Tag { queue: QUEUE, tags: many.clone() }));
    assert_eq!(refused, Outcome::Queue(Err(QueueError::TooManyTags { queue: QUEUE, count: 51 })));
    assert_eq!(tags(&sim).len(), 1);
    // A key over 128 characters is no valid command: the decoder refuses it (so the
    // runtime checks before it logs).
    let Command::Queue(too_long) = tag(vec![(&"k".repeat(129), "v")]) else { unreachable!() };
    assert_eq!(too_long.validate(), Err(sluice_state::machine::InvalidCommand::Tag));
    // Snapshotted (with the id counters), restored, and replayed after a trim of the log.
    sim.snapshot();
    sim.trim_log();
    assert_eq!(tags(&sim).len(), 1);
    let deleted = sim.append(Command::Queue(QueueCommand::DeleteQueue { queue: QUEUE }));
    assert_eq!(deleted, Outcome::Queue(Ok(QueueReply::Deleted)));
    let missing = sim.append(tag(vec![("a", "b")]));
    assert_eq!(missing, Outcome::Queue(Err(QueueError::QueueNotFound(QUEUE))));
    // The deleted queue's creation is trimmed away after the next snapshot; its id is not.
    sim.snapshot();
    sim.trim_log();
    assert!(sim
        .decoded_log()
        .iter()
        .all(|(_, entry)| !matches!(entry.command, Command::Queue(QueueCommand::CreateQueue { .. }))));
    assert_eq!(sim.state.next_queue_id(), QUEUE.0 + 1, "a new queue never takes the deleted one's id");
}
