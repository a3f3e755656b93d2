//! SubscribeToShard: enhanced fan-out. A task on the shard's core pushes records to the
//! consumer as soon as they are durable, paced to 2 MiB/s per consumer and shard, for up to
//! five minutes, through a small bounded queue to the connection that asked.

use crate::arn;
use crate::error::ServiceError;
use crate::limits::{
    RESUBSCRIBE_WINDOW_MS, SUBSCRIPTIONS_PER_CORE_MAX, SUBSCRIPTION_EVENTS_QUEUED_MAX, SUBSCRIPTION_EVENT_BYTES_MAX,
    SUBSCRIPTION_HEARTBEAT_MS, SUBSCRIPTION_LIFETIME_MS,
};
use crate::model::{ConsumerRef, SubscribeToShard, SubscribeToShardEvent};
use crate::node::{Core, ShardRoute};
use crate::service::{parse_shard_id, record_model, start_position};
use crate::throttle::EfoLimit;
use futures_lite::future;
use sluice_engine::limits::GET_RECORDS_COUNT_MAX;
use sluice_engine::StartPosition;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// What a subscription sends to its connection.
#[derive(Debug)]
pub enum SubscriptionItem {
    Event(SubscribeToShardEvent),
    /// The subscription ended normally (its lifetime elapsed, or another took over).
    End,
    /// The subscription failed; nothing follows.
    Error(ServiceError),
}

struct Slot {
    id: u64,
    started_ms: i64,
    cancel: async_channel::Sender<()>,
}

/// The subscriptions running on one core, by (consumer ARN, shard uid).
#[derive(Default)]
pub struct Registry {
    active: RefCell<HashMap<(String, u64), Slot>>,
    next_id: Cell<u64>,
}

impl Core {
    /// Starts a subscription; its events arrive on the returned receiver, which the caller
    /// must drain (or drop, which ends the subscription).
    pub async fn subscribe_to_shard(
        self: &Rc<Self>,
        request: SubscribeToShard,
    ) -> Result<async_channel::Receiver<SubscriptionItem>, ServiceError> {
        let consumer = ConsumerRef { consumer_arn: Some(request.consumer_arn.clone()), ..Default::default() };
        let (route, _) = self.find_consumer(&consumer)?;
        let not_found = || {
            ServiceError::not_found(format!(
                "Shard {} in stream {} under account {} does not exist",
                request.shard_id,
                route.meta.name,
                arn::account_id()
            ))
        };
        let number = parse_shard_id(&request.shard_id).ok_or_else(not_found)?;
        let shard = route.shard(number).ok_or_else(not_found)?;
        let start = &request.starting_position;
        let position =
            start_position(start.position_type, start.sequence_number.as_deref(), start.timestamp_ms, &shard)?;
        let (events, receiver) = async_channel::bounded(SUBSCRIPTION_EVENTS_QUEUED_MAX);
        let consumer_arn = request.consumer_arn;
        let stream_name = route.meta.name.clone();
        self.run_on(shard.core, move |core| async move {
            core.start_subscription(consumer_arn, stream_name, shard, position, events)
        })
        .await??;
        Ok(receiver)
    }

    fn start_subscription(
        self: Rc<Self>,
        consumer_arn: String,
        stream_name: String,
        shard: ShardRoute,
        position: StartPosition,
        events: async_channel::Sender<SubscriptionItem>,
    ) -> Result<(), ServiceError> {
        let now_ms = self.now_ms();
        let key = (consumer_arn, shard.uid);
        let mut active = self.subscriptions.active.borrow_mut();
        if let Some(existing) = active.get(&key) {
            if now_ms - existing.started_ms < RESUBSCRIBE_WINDOW_MS {
                return Err(ServiceError::in_use(format!(
                    "Another active subscription exists for consumer {} on shard {}; resubscribe after {RESUBSCRIBE_WINDOW_MS} ms",
                    key.0,
                    sluice_engine::catalog::shard_id(shard.number)
                )));
            }
            // After the window the new subscription takes over and the old one ends.
            existing.cancel.close();
        } else if active.len() >= SUBSCRIPTIONS_PER_CORE_MAX {
            return Err(ServiceError::limit("Too many active subscriptions on this node"));
        }
        let next_index = self.journal.resolve(shard.uid, position)?;
        let id = self.subscriptions.next_id.get();
        self.subscriptions.next_id.set(id + 1);
        let (cancel, cancelled) = async_channel::bounded(1);
        active.insert(key.clone(), Slot { id, started_ms: now_ms, cancel });
        drop(active);
        glommio::spawn_local(async move {
            self.push(&stream_name, shard, next_index, &events, cancelled).await;
            let mut active = self.subscriptions.active.borrow_mut();
            if active.get(&key).is_some_and(|slot| slot.id == id) {
                active.remove(&key);
            }
        })
        .detach();
        Ok(())
    }

    /// Pushes records from `next_index` on until the lifetime ends, the consumer goes away,
    /// another subscription takes over, or the node shuts down.
    async fn push(
        &self,
        stream_name: &str,
        shard: ShardRoute,
        mut next_index: u64,
        events: &async_channel::Sender<SubscriptionItem>,
        cancelled: async_channel::Receiver<()>,
    ) {
        let deadline_ms = self.now_ms() + SUBSCRIPTION_LIFETIME_MS;
        let mut pace = EfoLimit::new(self.shared.config.limits, self.now_ms());
        let continuation = |index: u64| shard.seq_prefix.sequence_number(index.saturating_sub(1)).to_string();
        loop {
            let now_ms = self.now_ms();
            if now_ms >= deadline_ms || cancelled.is_closed() || self.shared.is_shutting_down() {
                let _ = events.send(SubscriptionItem::End).await;
                return;
            }
            let batch = match self
                .journal
                .read(shard.uid, next_index, GET_RECORDS_COUNT_MAX, SUBSCRIPTION_EVENT_BYTES_MAX)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    let _ = events.send(SubscriptionItem::Error(error.into())).await;
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
                    records: batch.records.into_iter().map(record_model).collect(),
                    continuation_sequence_number: continuation(next_index),
                    millis_behind_latest: batch.millis_behind_latest,
                    child_shards: Vec::new(),
                };
                if events.send(SubscriptionItem::Event(event)).await.is_err() {
                    return;
                }
                continue;
            }
            // Caught up with a shard a reshard closed: the last event names its children.
            let ended = self.routes().streams.get(stream_name).and_then(|stream| {
                let end = stream.shard(shard.number).filter(|s| s.uid == shard.uid)?.ending_index?;
                (next_index >= end).then(|| crate::reshard::child_shards(&stream.meta, shard.number))
            });
            if let Some(child_shards) = ended {
                let last = SubscribeToShardEvent {
                    records: Vec::new(),
                    continuation_sequence_number: continuation(next_index),
                    millis_behind_latest: 0,
                    child_shards,
                };
                if events.send(SubscriptionItem::Event(last)).await.is_ok() {
                    let _ = events.send(SubscriptionItem::End).await;
                }
                return;
            }
            // Caught up: wait for the next record, a heartbeat, the end, or a takeover.
            let waiter = match self.journal.wait_for_index(shard.uid, next_index) {
                Ok(Some(waiter)) => waiter,
                Ok(None) => continue,
                Err(error) => {
                    let _ = events.send(SubscriptionItem::Error(error.into())).await;
                    return;
                }
            };
            let wait_ms = SUBSCRIPTION_HEARTBEAT_MS.min((deadline_ms - now_ms).max(0) as u64);
            let woken = future::or(async { waiter.await.is_ok() }, async {
                future::or(
                    async {
                        glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
                        false
                    },
                    async {
                        let _ = cancelled.recv().await;
                        false
                    },
                )
                .await
            })
            .await;
            if !woken && !cancelled.is_closed() && self.now_ms() < deadline_ms {
                let heartbeat = SubscribeToShardEvent {
                    records: Vec::new(),
                    continuation_sequence_number: continuation(next_index),
                    millis_behind_latest: 0,
                    child_shards: Vec::new(),
                };
                if events.send(SubscriptionItem::Event(heartbeat)).await.is_err() {
                    return;
                }
            }
        }
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
