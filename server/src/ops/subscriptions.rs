//! SubscribeToShard: enhanced fan-out. A task on the shard's core pushes records to the
//! consumer as soon as they are durable, paced to 2 MiB/s per consumer and shard, for the
//! subscription's lifetime, through a small bounded queue to the connection that asked.

use crate::kinesis::errors::engine_error;
use crate::kinesis::positions::start_position;
use crate::kinesis::throttle::EfoLimit;
use crate::kinesis::views;
use crate::limits::{SUBSCRIPTION_EVENTS_QUEUED_MAX, SUBSCRIPTION_EVENT_BYTES_MAX};
use crate::ops::node::Node;
use crate::ops::records::{route_of, shard_of};
use crate::runtime::routes::ShardRoute;
use futures_lite::future;
use sluice_engine::StartPosition;
use sluice_model::limits::GET_RECORDS_COUNT_MAX;
use sluice_model::{KinesisError, SequenceNumber, SubscribeToShardEvent, SubscribeToShardInput};
use std::rc::Rc;
use std::time::Duration;

/// What a subscription sends to its connection.
#[derive(Debug)]
pub enum SubscriptionItem {
    Event(SubscribeToShardEvent),
    /// The subscription ended normally (its lifetime elapsed, or another took over).
    End,
    /// The subscription failed; nothing follows.
    Error(KinesisError),
}

/// A subscription's events, in order. Dropping it ends the subscription.
pub type Events = async_channel::Receiver<SubscriptionItem>;

/// Starts a subscription; its events arrive on the returned receiver, which the caller must
/// drain (or drop, which ends the subscription).
pub async fn subscribe(node: &Rc<Node>, input: SubscribeToShardInput) -> Result<Events, KinesisError> {
    let consumer = crate::ops::consumers::find_by_arn(node, &input.consumer_arn)?;
    let route = route_of(node, &consumer.stream)?;
    let shard = shard_of(node, &route, &input.shard_id)?;
    let from = &input.starting_position;
    let position = start_position(
        &from.r#type,
        from.sequence_number.as_ref(),
        from.timestamp,
        shard.seq_prefix,
        shard.number,
        "SubscribeToShard",
    )?;
    let (events, receiver) = async_channel::bounded(SUBSCRIPTION_EVENTS_QUEUED_MAX);
    let consumer_arn = input.consumer_arn.into_string();
    let stream_name = route.meta.name.clone();
    node.run_on(shard.core, move |node| async move {
        start_on_shard_core(node, consumer_arn, stream_name, shard, position, events).await
    })
    .await??;
    Ok(receiver)
}

/// On the shard's core: registers the subscription and starts its task.
async fn start_on_shard_core(
    node: Rc<Node>,
    consumer_arn: String,
    stream_name: String,
    shard: ShardRoute,
    position: StartPosition,
    events: async_channel::Sender<SubscriptionItem>,
) -> Result<(), KinesisError> {
    let limits = node.limits();
    let in_use = || {
        KinesisError::resource_in_use(format!(
            "Another active subscription exists for consumer {consumer_arn} on shard {}; resubscribe after {} ms",
            sluice_model::ShardId::from_number(shard.number),
            limits.resubscribe_window_ms
        ))
    };
    let started = node.subscriptions.start(
        &consumer_arn,
        shard.uid,
        node.now_ms(),
        limits.resubscribe_window_ms,
        limits.subscriptions_per_core_max,
        in_use,
    )?;
    // Replicated, LATEST is past every record acknowledged before the call (as for
    // GetShardIterator).
    if matches!(position, StartPosition::Latest) && node.shared.config.cluster.is_some() {
        if let Err(error) = crate::ops::cluster::records::caught_up_to_commit(shard.uid).await {
            node.subscriptions.finish(&consumer_arn, shard.uid, started.id);
            return Err(error);
        }
    }
    let next_index = match node.journal.resolve(shard.uid, position).await {
        Ok(index) => index,
        Err(error) => {
            node.subscriptions.finish(&consumer_arn, shard.uid, started.id);
            return Err(engine_error(error));
        }
    };
    glommio::spawn_local(async move {
        push(&node, &stream_name, shard, next_index, &events, started.cancelled).await;
        node.subscriptions.finish(&consumer_arn, shard.uid, started.id);
    })
    .detach();
    Ok(())
}

/// Pushes records from `next_index` on until the lifetime ends, the consumer goes away,
/// another subscription takes over, or the node shuts down.
async fn push(
    node: &Node,
    stream_name: &str,
    shard: ShardRoute,
    mut next_index: u64,
    events: &async_channel::Sender<SubscriptionItem>,
    cancelled: async_channel::Receiver<()>,
) {
    let limits = node.limits().clone();
    let deadline_ms = node.now_ms() + limits.subscription_lifetime_ms;
    let mut pace = EfoLimit::new(node.shared.config.profile, node.now_ms());
    let continuation = |index: u64| views::sequence_number(shard.seq_prefix.sequence_number(index.saturating_sub(1)));
    loop {
        let now_ms = node.now_ms();
        if now_ms >= deadline_ms || cancelled.is_closed() || node.shared.shutdown.is_requested() {
            let _ = events.send(SubscriptionItem::End).await;
            return;
        }
        let batch =
            match node.journal.read(shard.uid, next_index, GET_RECORDS_COUNT_MAX, SUBSCRIPTION_EVENT_BYTES_MAX).await {
                Ok(mut batch) => match node.open_records(shard.uid, &mut batch.records) {
                    Ok(()) => batch,
                    Err(error) => {
                        let _ = events.send(SubscriptionItem::Error(error)).await;
                        return;
                    }
                },
                Err(error) => {
                    let _ = events.send(SubscriptionItem::Error(engine_error(error))).await;
                    return;
                }
            };
        if !batch.records.is_empty() {
            let bytes: usize = batch.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
            let delay_ms = pace.delay_ms(now_ms, bytes as u64);
            if delay_ms > 0 && !sleep_unless_cancelled(delay_ms, &cancelled).await {
                continue;
            }
            next_index = batch.next_index;
            let event = SubscribeToShardEvent {
                records: batch.records.into_iter().map(views::record).collect(),
                continuation_sequence_number: continuation(next_index),
                millis_behind_latest: batch.millis_behind_latest,
                child_shards: None,
            };
            crate::ops::observe::event_pushed(node, stream_name, shard.number, &event);
            if events.send(SubscriptionItem::Event(event)).await.is_err() {
                return;
            }
            continue;
        }
        // Caught up with a shard a reshard closed: the last event names its children.
        let ended = node.routes().streams.get(stream_name).and_then(|stream| {
            let end = stream.shard(shard.number).filter(|s| s.uid == shard.uid)?.ending_index?;
            (next_index >= end).then(|| views::child_shards(&stream.meta, shard.number))
        });
        if let Some(child_shards) = ended {
            let last = heartbeat(continuation(next_index), Some(child_shards).filter(|children| !children.is_empty()));
            if events.send(SubscriptionItem::Event(last)).await.is_ok() {
                let _ = events.send(SubscriptionItem::End).await;
            }
            return;
        }
        // Caught up: wait for the next record, a heartbeat, the end, or a takeover.
        let waiter = match node.journal.wait_for_index(shard.uid, next_index) {
            Ok(Some(waiter)) => waiter,
            Ok(None) => continue,
            Err(error) => {
                let _ = events.send(SubscriptionItem::Error(engine_error(error))).await;
                return;
            }
        };
        let wait_ms = limits.subscription_heartbeat_ms.min((deadline_ms - now_ms).max(0) as u64);
        let woken = future::or(async { waiter.await.is_ok() }, async {
            sleep_unless_cancelled(wait_ms, &cancelled).await;
            false
        })
        .await;
        if !woken
            && !cancelled.is_closed()
            && node.now_ms() < deadline_ms
            && events.send(SubscriptionItem::Event(heartbeat(continuation(next_index), None))).await.is_err()
        {
            return;
        }
    }
}

/// An event without records: where the subscription is, and how far behind (not at all).
fn heartbeat(
    continuation: SequenceNumber,
    child_shards: Option<Vec<sluice_model::ChildShard>>,
) -> SubscribeToShardEvent {
    SubscribeToShardEvent {
        records: Vec::new(),
        continuation_sequence_number: continuation,
        millis_behind_latest: 0,
        child_shards,
    }
}

/// Sleeps `delay_ms` unless the subscription is cancelled first; true if it slept fully.
async fn sleep_unless_cancelled(delay_ms: u64, cancelled: &async_channel::Receiver<()>) -> bool {
    future::or(
        async {
            glommio::timer::sleep(Duration::from_millis(delay_ms)).await;
            true
        },
        async {
            let _ = cancelled.recv().await;
            false
        },
    )
    .await
}
