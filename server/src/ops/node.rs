//! One core's context, and what every core shares.
//!
//! ```text
//!             ┌──────────── Shared (Send + Sync, read-mostly) ─────────────┐
//!             │ config   routes: RouteTable   mailboxes   shutdown   clock │
//!             └────────────────────────────────────────────────────────────┘
//!   core 0: Node { journal-0, shards, subscriptions, catalog (control plane) }
//!   core 1: Node { journal-1, shards, subscriptions }           ... core N-1
//! ```
//!
//! A request is served on the core whose listener accepted its connection; whatever it needs
//! from another core runs there ([`Node::run_on`]). Core 0 owns the catalog: control
//! operations, reshards and the on-demand scaler run there.

use crate::kinesis::shard_iterator::IteratorKey;
use crate::limits::Limits;
use crate::metrics::health::Health;
use crate::metrics::CoreMetrics;
use crate::ops::delivery::Delivery;
use crate::ops::state::{CatalogOwner, ShardStates, Subscriptions};
use crate::runtime::mailbox::{Job, Mailboxes};
use crate::runtime::routes::{RouteTable, Routes, ShardRoute};
use crate::runtime::shutdown::{CoreSignal, Shutdown};
use crate::runtime::NodeConfig;
use sluice_engine::catalog::Catalog;
use sluice_engine::clock::SharedClock;
use sluice_engine::Journal;
use sluice_model::{Identity, KinesisError};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

/// What every core shares.
pub struct Shared {
    pub config: NodeConfig,
    pub clock: SharedClock,
    pub routes: RouteTable,
    /// This node's own iterator key, from its data directory: signs iterators on a node
    /// alone (a replicated node's is the cluster's: [`Shared::iterator_key`]).
    pub local_iterator_key: IteratorKey,
    pub mailboxes: Mailboxes<Node>,
    pub shutdown: Shutdown,
    /// Ready or not, for `/health/ready`.
    pub health: Health,
    /// When the node started, for `sluice_uptime_seconds`.
    pub started: std::time::Instant,
    /// The delivery streams' figures for `/metrics`, once they run (set by core 0's
    /// delivery-stream readers).
    pub delivery_metrics: std::sync::OnceLock<Arc<dyn crate::metrics::DeliveryMetrics>>,
    /// In cluster mode, the leader of each Raft group as the cores hosting them last saw it
    /// (`ops::cluster`); empty on a node alone.
    pub leaders: crate::runtime::cluster::LeaderTable,
}

impl Shared {
    /// The shared state and each core's mailbox receiver.
    pub fn new(
        config: NodeConfig,
        clock: SharedClock,
        catalog: &Catalog,
        iterator_key: IteratorKey,
    ) -> (Arc<Shared>, Vec<async_channel::Receiver<Job<Node>>>) {
        let (mailboxes, receivers) = Mailboxes::new(config.cores, config.limits.mailbox_jobs_max);
        let shared = Shared {
            shutdown: Shutdown::new(config.cores),
            config,
            clock,
            routes: RouteTable::new(Routes::from_catalog(catalog)),
            local_iterator_key: iterator_key,
            mailboxes,
            health: Health::default(),
            started: std::time::Instant::now(),
            delivery_metrics: std::sync::OnceLock::new(),
            leaders: Default::default(),
        };
        (Arc::new(shared), receivers)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The key that signs and checks shard iterators: the cluster's once the catalog holds
    /// one (every member then accepts every member's iterators), else this node's own.
    pub fn iterator_key(&self) -> IteratorKey {
        self.routes.load().iterator_key.clone().unwrap_or_else(|| self.local_iterator_key.clone())
    }

    /// Asks every core to stop: each stops accepting, drains its connections, and once all
    /// have, closes its journal. Called from the signal thread.
    pub fn begin_shutdown(&self) {
        self.shutdown.request();
        self.health.set_stopping();
        // Mailboxes stay open: cores keep forwarding in-flight work while they drain.
        self.mailboxes.broadcast_blocking(|| Box::new(|node: Rc<Node>| Box::pin(async move { node.signal.trigger() })));
    }
}

/// One core's context. Lives on that core's executor only.
pub struct Node {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub journal: Journal,
    /// The shards this core owns: quotas and write demand.
    pub shards: ShardStates,
    /// The subscriptions reading this core's shards.
    pub subscriptions: Subscriptions,
    /// The catalog, on core 0 only.
    pub catalog: Option<CatalogOwner>,
    /// The delivery state of consumer groups, on core 0 only (see `ops/delivery.rs`).
    pub delivery: Option<Rc<Delivery>>,
    /// Closed when the node shuts down; this core's listeners and connections watch it.
    pub signal: CoreSignal,
    /// What this core counts for the metrics (its shards' write counters are in `shards`).
    pub metrics: CoreMetrics,
    /// This core's record sealers and derived data keys (encryption at rest).
    pub keys: std::cell::RefCell<crate::ops::sealing::CoreKeys>,
}

impl Node {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        journal: Journal,
        catalog: Option<Catalog>,
        delivery: Option<Rc<Delivery>>,
    ) -> Rc<Node> {
        Rc::new(Node {
            id,
            shared,
            journal,
            shards: ShardStates::default(),
            subscriptions: Subscriptions::default(),
            catalog: catalog.map(CatalogOwner::new),
            delivery,
            signal: CoreSignal::default(),
            metrics: CoreMetrics::default(),
            keys: Default::default(),
        })
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.shared.routes.load()
    }

    /// Seals the data of `records` (all of `stream`, on their shards' core) if the stream is
    /// encrypted (`ops::sealing`). Called once per append, just before `Journal::append`.
    pub fn seal_appends(&self, stream: &str, records: &mut [sluice_engine::AppendRecord]) -> Result<(), KinesisError> {
        let routes = self.routes();
        let Some(encryption) = routes.streams.get(stream).and_then(|route| route.meta.encryption.as_ref()) else {
            return Ok(());
        };
        self.keys.borrow_mut().seal(self.shared.config.security.keys.as_deref(), encryption, records)
    }

    /// Opens the sealed records among `records`, read from shard `shard_uid`, in place
    /// (`ops::sealing`): what every reader does after `Journal::read`.
    pub fn open_records(
        &self,
        shard_uid: u64,
        records: &mut [sluice_engine::StoredRecord],
    ) -> Result<(), KinesisError> {
        if !records.iter().any(|record| record.sealed) {
            return Ok(());
        }
        self.keys.borrow_mut().open(self.shared.config.security.keys.as_deref(), shard_uid, records)
    }

    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.config.identity
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.config.limits
    }

    /// Runs `work` on core `core` and returns its result; inline if that is this core.
    pub async fn run_on<T, F, Fut>(self: &Rc<Self>, core: usize, work: F) -> Result<T, KinesisError>
    where
        F: FnOnce(Rc<Node>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.shared.mailboxes.run_on(self.id, self, core, work).await
    }

    /// The delivery state (consumer-group leases, queues), which core 0 alone holds.
    pub fn delivery_state(&self) -> Result<&Rc<Delivery>, KinesisError> {
        self.delivery.as_ref().ok_or_else(|| KinesisError::internal("the delivery state lives on core 0"))
    }

    /// Runs `work` on core 0, the delivery state's core, and returns its result.
    pub async fn on_core0<T, F, Fut>(self: &Rc<Self>, work: F) -> Result<T, KinesisError>
    where
        F: FnOnce(Rc<Node>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, KinesisError>> + 'static,
        T: Send + 'static,
    {
        self.run_on(0, work).await?
    }

    /// Makes this core ready to serve `shards`: registered with the journal, with quotas. A
    /// shard that is not open stays readable and takes no records.
    pub fn adopt_shards(&self, shards: &[ShardRoute], mark_closed: bool) {
        let now_ms = self.now_ms();
        for shard in shards {
            debug_assert_eq!(shard.core, self.id);
            self.journal.register_shard(shard.spec());
            if mark_closed && !shard.open {
                self.journal.mark_closed(shard.uid);
            }
            self.shards.adopt(shard.uid, self.shared.config.profile, now_ms);
        }
    }

    /// Stops serving `uids`: their streams were deleted.
    pub fn drop_shards(&self, uids: &[u64]) {
        for &uid in uids {
            self.journal.forget_shard(uid);
            self.shards.forget(uid);
        }
    }
}
