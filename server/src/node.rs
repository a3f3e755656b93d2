//! The thread-per-core runtime: one pinned glommio executor per core, each owning a journal
//! and the shards placed on it, talking to the others only through bounded mailboxes.
//!
//! ```text
//!             ┌──────────── Shared (Send + Sync, read-mostly) ─────────────┐
//!             │ routes: ArcSwap<Routes>   mailboxes: [bounded channel; N]  │
//!             └────────────────────────────────────────────────────────────┘
//!   core 0: Core { journal-0, shard limits, catalog (control plane) }
//!   core 1: Core { journal-1, shard limits }            ... core N-1
//! ```
//!
//! A request is served on the core whose listener accepted its connection. Whatever it needs
//! from another core runs there as a *job* ([`Core::run_on`]): a closure sent through that
//! core's bounded mailbox, whose result comes back on a oneshot channel. Control-plane
//! operations (create, delete, retention, tags, consumers) run on core 0, which owns the
//! catalog, persists it, then publishes a new [`Routes`] snapshot that every core reads
//! without locks.

use crate::error::ServiceError;
use crate::limits;
use crate::shard_iterator::IteratorKey;
use crate::throttle::{LimitsProfile, ShardLimits};
use arc_swap::ArcSwap;
use futures_channel::oneshot;
use sluice_engine::catalog::{Catalog, StreamMeta};
use sluice_engine::clock::SharedClock;
use sluice_engine::routing::{find_range, HashKey, HashKeyRange};
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{Journal, ShardSpec};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Work sent to another core: runs there with that core's context.
pub type Job = Box<dyn FnOnce(Rc<Core>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Where a shard lives and how its sequence numbers look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRoute {
    pub uid: u64,
    pub number: u32,
    pub core: usize,
    pub seq_prefix: ShardSeqPrefix,
    pub retention_ms: i64,
    /// Takes new records (not closed or closing by a reshard).
    pub open: bool,
    /// Where a closed shard's records end, once known.
    pub ending_index: Option<u64>,
}

impl ShardRoute {
    pub fn spec(&self) -> ShardSpec {
        ShardSpec { uid: self.uid, seq_prefix: self.seq_prefix, retention_ms: self.retention_ms }
    }
}

/// One stream as the data plane sees it.
#[derive(Debug, Clone)]
pub struct StreamRoute {
    pub meta: StreamMeta,
    /// Open shards sorted by the start of their hash-key range.
    open_ranges: Vec<HashKeyRange>,
    open_shards: Vec<ShardRoute>,
    by_number: HashMap<u32, ShardRoute>,
}

impl StreamRoute {
    fn new(meta: &StreamMeta) -> StreamRoute {
        let retention_ms = meta.retention_ms();
        let route = |shard: &sluice_engine::catalog::ShardMeta| ShardRoute {
            uid: shard.uid,
            number: shard.number,
            core: shard.core as usize,
            seq_prefix: shard.seq_prefix,
            retention_ms,
            open: shard.is_open(),
            ending_index: shard.ending_index,
        };
        let mut open: Vec<_> = meta.shards.iter().filter(|shard| shard.is_open()).collect();
        open.sort_by_key(|shard| shard.hash_key_start);
        StreamRoute {
            meta: meta.clone(),
            open_ranges: open.iter().map(|shard| shard.hash_key_range()).collect(),
            open_shards: open.iter().map(|shard| route(shard)).collect(),
            by_number: meta.shards.iter().map(|shard| (shard.number, route(shard))).collect(),
        }
    }

    /// The open shard whose range holds `key`.
    pub fn shard_for(&self, key: HashKey) -> Option<ShardRoute> {
        find_range(&self.open_ranges, key).map(|index| self.open_shards[index])
    }

    pub fn shard(&self, number: u32) -> Option<ShardRoute> {
        self.by_number.get(&number).copied()
    }
}

/// The data plane's read-only view of the catalog, replaced whole on every change.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub streams: HashMap<String, Arc<StreamRoute>>,
}

impl Routes {
    pub fn from_catalog(catalog: &Catalog) -> Routes {
        let streams = catalog.streams.iter().map(|(name, meta)| (name.clone(), Arc::new(StreamRoute::new(meta))));
        Routes { streams: streams.collect() }
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub cores: usize,
    pub limits: LimitsProfile,
    /// How long the on-demand scaler measures demand before splitting hot shards.
    pub on_demand_window_ms: u64,
}

/// What every core shares.
pub struct Shared {
    pub config: NodeConfig,
    pub clock: SharedClock,
    pub routes: ArcSwap<Routes>,
    pub iterator_key: IteratorKey,
    mailboxes: Vec<async_channel::Sender<Job>>,
    shutting_down: AtomicBool,
    /// Cores still serving connections during a shutdown; journals close when it reaches 0,
    /// since any core may still be forwarding appends to any other until then.
    cores_serving: AtomicUsize,
}

impl Shared {
    pub fn new(
        config: NodeConfig,
        clock: SharedClock,
        catalog: &Catalog,
        iterator_key: IteratorKey,
    ) -> (Arc<Shared>, Vec<async_channel::Receiver<Job>>) {
        let (mailboxes, receivers) =
            (0..config.cores).map(|_| async_channel::bounded(limits::MAILBOX_JOBS_MAX)).unzip();
        let shared = Shared {
            cores_serving: AtomicUsize::new(config.cores),
            config,
            clock,
            routes: ArcSwap::from_pointee(Routes::from_catalog(catalog)),
            iterator_key,
            mailboxes,
            shutting_down: AtomicBool::new(false),
        };
        (Arc::new(shared), receivers)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Asks every core to stop: each stops accepting, drains its connections, and once all
    /// have, closes its journal.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for mailbox in &self.mailboxes {
            // Mailboxes stay open: cores keep forwarding in-flight work while they drain.
            let mut job: Job = Box::new(|core: Rc<Core>| Box::pin(async move { core.begin_shutdown() }));
            loop {
                match mailbox.try_send(job) {
                    Ok(()) => break,
                    Err(async_channel::TrySendError::Full(returned)) => {
                        job = returned;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(async_channel::TrySendError::Closed(_)) => break,
                }
            }
        }
    }
}

/// One core's context. Lives on that core's executor only.
pub struct Core {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub journal: Journal,
    /// Per-shard throughput quotas of the shards this core owns.
    pub shard_limits: RefCell<HashMap<u64, ShardLimits>>,
    /// The catalog, on core 0 only; control operations hold `control` while they change it.
    pub catalog: Option<RefCell<Catalog>>,
    pub control: Rc<glommio::sync::Semaphore>,
    /// Closed when the node shuts down; listeners and connections watch it.
    pub shutdown: async_channel::Sender<()>,
    pub shutdown_signal: async_channel::Receiver<()>,
    pub subscriptions: crate::subscription::Registry,
    /// Writes producers asked of this core's shards since the on-demand scaler last looked.
    pub write_demand: RefCell<HashMap<u64, crate::on_demand::Demand>>,
}

impl Core {
    pub fn new(id: usize, shared: Arc<Shared>, journal: Journal, catalog: Option<Catalog>) -> Rc<Core> {
        let (shutdown, shutdown_signal) = async_channel::bounded(1);
        Rc::new(Core {
            id,
            shared,
            journal,
            shard_limits: RefCell::new(HashMap::new()),
            catalog: catalog.map(RefCell::new),
            control: Rc::new(glommio::sync::Semaphore::new(1)),
            shutdown,
            shutdown_signal,
            subscriptions: Default::default(),
            write_demand: RefCell::new(HashMap::new()),
        })
    }

    /// Wakes every listener and connection of this core: stop accepting, drain, close.
    pub fn begin_shutdown(&self) {
        self.shutdown.close();
    }

    /// Resolves when the node begins shutting down.
    pub async fn shutdown_requested(&self) {
        let _ = self.shutdown_signal.recv().await;
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.shared.routes.load_full()
    }

    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// Runs `work` on core `core` and returns its result. On this core it runs inline;
    /// elsewhere it goes through that core's bounded mailbox.
    pub async fn run_on<T, F, Fut>(self: &Rc<Self>, core: usize, work: F) -> Result<T, ServiceError>
    where
        F: FnOnce(Rc<Core>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if core == self.id {
            return Ok(work(self.clone()).await);
        }
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |core| {
            Box::pin(async move {
                let _ = reply.send(work(core).await);
            })
        });
        let mailbox =
            self.shared.mailboxes.get(core).ok_or_else(|| ServiceError::internal(format!("no core {core}")))?;
        mailbox.send(job).await.map_err(|_| ServiceError::internal("the node is shutting down"))?;
        result.await.map_err(|_| ServiceError::internal(format!("core {core} dropped the request")))
    }

    /// Makes this core serve `shards` (registering them with the journal and giving each its
    /// throughput quotas), or updates their settings.
    pub fn adopt_shards(&self, shards: &[ShardRoute]) {
        let now_ms = self.now_ms();
        let mut shard_limits = self.shard_limits.borrow_mut();
        for shard in shards {
            debug_assert_eq!(shard.core, self.id);
            self.journal.register_shard(shard.spec());
            if !shard.open {
                self.journal.mark_closed(shard.uid);
            }
            shard_limits.entry(shard.uid).or_insert_with(|| ShardLimits::new(self.shared.config.limits, now_ms));
        }
    }

    pub fn drop_shards(&self, uids: &[u64]) {
        let mut shard_limits = self.shard_limits.borrow_mut();
        for uid in uids {
            self.journal.forget_shard(*uid);
            shard_limits.remove(uid);
        }
    }

    /// Serves the mailbox: every job runs as its own task, so a long one (a subscription)
    /// does not hold up the rest.
    pub async fn serve_mailbox(self: Rc<Self>, mailbox: async_channel::Receiver<Job>) {
        while let Ok(job) = mailbox.recv().await {
            glommio::spawn_local(job(self.clone())).detach();
        }
    }

    /// This core finished draining its connections; waits for every other core to finish too.
    pub async fn finish_serving(&self) {
        self.shared.cores_serving.fetch_sub(1, Ordering::SeqCst);
        while self.shared.cores_serving.load(Ordering::SeqCst) > 0 {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
