//! The state each feature keeps on a core, as its own type: [`node::Node`](super::node::Node)
//! holds one of each, and the features' functions (in their own modules) work on them. Nothing
//! here runs an operation or reaches another core.

use crate::kinesis::demand::Demand;
use crate::kinesis::throttle::{LimitsProfile, ShardLimits};
use crate::metrics::ShardCounters;
use rustc_hash::FxHashMap;
use sluice_engine::catalog::Catalog;
use sluice_model::KinesisError;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// What a core keeps for one shard it owns.
pub struct ShardState {
    /// The shard's throughput quotas.
    pub limits: ShardLimits,
    /// Writes producers asked of the shard since the on-demand scaler last looked.
    pub demand: Demand,
    /// The shard's write figures for the metrics, since this core adopted it.
    pub counters: ShardCounters,
}

/// The shards this core serves, by uid. A shard is here from before its first request can
/// be routed to this core (`ops/catalog.rs` adopts before it publishes) until after the last.
///
/// Looked up once per record written (its quota), so hashed with `FxHash`: uids are the
/// node's own numbers, not chosen by clients, so SipHash's flood resistance buys nothing
/// here (issue 19's profile: SipHash about 2.5% of the native PutRecords path).
#[derive(Default)]
pub struct ShardStates(RefCell<FxHashMap<u64, ShardState>>);

impl ShardStates {
    /// Serves `uid` from now on, with fresh quotas (kept if it is served already).
    pub fn adopt(&self, uid: u64, profile: LimitsProfile, now_ms: i64) {
        self.0.borrow_mut().entry(uid).or_insert_with(|| ShardState {
            limits: ShardLimits::new(profile, now_ms),
            demand: Demand::default(),
            counters: ShardCounters::default(),
        });
    }

    pub fn forget(&self, uid: u64) {
        self.0.borrow_mut().remove(&uid);
    }

    /// How many shards this core serves.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `use_state` on shard `uid`'s state; `None` if this core does not serve it.
    pub fn with<T>(&self, uid: u64, use_state: impl FnOnce(&mut ShardState) -> T) -> Option<T> {
        self.0.borrow_mut().get_mut(&uid).map(use_state)
    }

    /// Every shard's demand since the last call, which starts a new window.
    pub fn take_demand(&self) -> HashMap<u64, Demand> {
        self.0.borrow_mut().iter_mut().map(|(uid, state)| (*uid, std::mem::take(&mut state.demand))).collect()
    }
}

/// One running subscription: which one it is, since when, and how to end it.
struct Slot {
    id: u64,
    started_ms: i64,
    cancel: async_channel::Sender<()>,
}

/// The subscriptions running on this core, by (consumer ARN, shard uid).
#[derive(Default)]
pub struct Subscriptions {
    active: RefCell<HashMap<(String, u64), Slot>>,
    next_id: Cell<u64>,
}

/// A subscription registered with [`Subscriptions::start`]: its id, and the receiver that closes
/// when another subscription takes over.
pub struct Started {
    pub id: u64,
    pub cancelled: async_channel::Receiver<()>,
}

impl Subscriptions {
    /// How many run now.
    pub fn len(&self) -> usize {
        self.active.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a subscription of `consumer` to shard `uid`. Within `resubscribe_window_ms`
    /// of the last one's start that is ResourceInUse; after it, the new one takes over and the
    /// old one ends. At most `max` run at once.
    pub fn start(
        &self,
        consumer: &str,
        uid: u64,
        now_ms: i64,
        resubscribe_window_ms: i64,
        max: usize,
        in_use: impl FnOnce() -> KinesisError,
    ) -> Result<Started, KinesisError> {
        let key = (consumer.to_owned(), uid);
        let mut active = self.active.borrow_mut();
        if let Some(existing) = active.get(&key) {
            if now_ms - existing.started_ms < resubscribe_window_ms {
                return Err(in_use());
            }
            existing.cancel.close();
        } else if active.len() >= max {
            return Err(KinesisError::limit_exceeded(format!(
                "Too many active subscriptions on this node: at most {max} per core"
            )));
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (cancel, cancelled) = async_channel::bounded(1);
        active.insert(key, Slot { id, started_ms: now_ms, cancel });
        Ok(Started { id, cancelled })
    }

    /// Subscription `id` of `consumer` to `uid` ended (unless another took its place already).
    pub fn finish(&self, consumer: &str, uid: u64, id: u64) {
        let mut active = self.active.borrow_mut();
        let key = (consumer.to_owned(), uid);
        if active.get(&key).is_some_and(|slot| slot.id == id) {
            active.remove(&key);
        }
    }
}

/// The catalog, owned by core 0, and the lock that serializes changes to it.
pub struct CatalogOwner {
    pub catalog: RefCell<Catalog>,
    pub lock: glommio::sync::Semaphore,
}

impl CatalogOwner {
    pub fn new(catalog: Catalog) -> CatalogOwner {
        CatalogOwner { catalog: RefCell::new(catalog), lock: glommio::sync::Semaphore::new(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscribing_within_the_window_is_refused_and_after_it_takes_over() {
        let subscriptions = Subscriptions::default();
        let in_use = || KinesisError::resource_in_use("busy");
        let first = subscriptions.start("c", 1, 0, 5_000, 10, in_use).unwrap();
        assert!(subscriptions.start("c", 1, 4_999, 5_000, 10, in_use).is_err());
        let second = subscriptions.start("c", 1, 5_000, 5_000, 10, in_use).unwrap();
        assert!(first.cancelled.is_closed(), "the old subscription is told to end");
        subscriptions.finish("c", 1, first.id);
        assert!(subscriptions.start("c", 1, 5_001, 5_000, 10, in_use).is_err(), "the first ending left the second");
        subscriptions.finish("c", 1, second.id);
        subscriptions.start("c", 1, 5_002, 5_000, 10, in_use).unwrap();
        assert!(subscriptions.start("d", 1, 5_002, 5_000, 1, in_use).is_err(), "at most one per core here");
    }

    #[test]
    fn demand_is_taken_and_reset() {
        let shards = ShardStates::default();
        shards.adopt(7, LimitsProfile::Kinesis, 0);
        shards.with(7, |state| state.demand.bytes += 10);
        assert_eq!(shards.take_demand()[&7].bytes, 10);
        assert_eq!(shards.take_demand()[&7].bytes, 0);
        shards.forget(7);
        assert!(shards.with(7, |_| ()).is_none());
    }
}
