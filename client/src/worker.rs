//! The consumer-group worker: one member of an application whose leases and checkpoints
//! sluiced keeps (the lease operations of `docs/clients.md`), doing what a KCL worker does.
//!
//! One worker runs on one glommio executor as three kinds of task:
//!
//! - **the lease taker** (the worker's own loop, every `taker_interval_ms`): lists the
//!   application's leases, judges which have expired with `kpl`'s [`ExpiryObserver`] (sluiced
//!   keeps an expiry time on its own clock and renewals do not move the counter, so the KCL's
//!   "counter unchanged for the failover time" would never fire), and applies `kpl`'s lease
//!   taker ([`decide`]) with TakeLease and StealLease, each conditional on the counter seen.
//!   A lease whose parents have not checkpointed SHARD_END is never taken (the taker leaves it
//!   out, and the daemon refuses it), so a shard's children are processed after their parents.
//! - **the renewer** (every third of the lease duration): RenewLease for every lease held. A
//!   `LeaseLostException` (the lease was taken or stolen: the counter moved) marks the lease
//!   lost at once. Each successful take or renewal extends the lease's local validity to the
//!   moment the request was *sent* plus the lease duration (the daemon applied it later, so it
//!   expires no sooner on its clock); a shard task hands records to its processor only while
//!   its lease is valid, so a worker that was paused (SIGSTOP) past its lease processes nothing
//!   when it wakes until a renewal says whether it still holds it.
//! - **a shard task per lease held**: a `ShardConsumer` (the processor's lifecycle: initialize,
//!   process records, checkpoint, lease lost, shard ended, shutdown requested) fed by the
//!   consumer's read path from the lease's checkpoint, checkpointing what was processed every
//!   `checkpoint_interval_ms` with CheckpointLease at the lease's counter (refused once another
//!   worker owns it: fencing). At the shard's end the processor checkpoints SHARD_END and the
//!   lease is released, which makes the children takeable.
//!
//! Shutdown is graceful: every shard task calls `shutdown_requested` (the processor
//! checkpoints what it processed), the checkpoint is written, and the lease is released so
//! another worker takes it at once rather than after it expires.
//!
//! Delivery is at least once: a new owner resumes after the last confirmed checkpoint.
//!
//! The lease calls go through a [`Transport`] of their own, so a worker speaks the native
//! protocol or HTTP for them as for its reads, reconnecting after a failed connection; a call
//! that takes longer than [`CALL_TIMEOUT_MS`] fails like a broken connection. Reading by
//! SubscribeToShard (`ReadMode::Subscribe`) works through the same read path but the group
//! tests poll.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sluice_kpl::consumer::checkpoint::{Checkpoint, Position, StartingPosition};
use sluice_kpl::consumer::lease::{decide, BalancerConfig, ExpiryObserver, LeaseView, WorkerId};
use sluice_kpl::consumer::processor::{Action, CheckpointRefused, ConsumerState, RecordProcessor, ShardConsumer};
use sluice_kpl::consumer::records::{DeaggregationIssue, ReceivedRecord};
use sluice_kpl::types::{HashKeyRange, ShardId};
use sluice_model::{
    ApplicationDescription, CheckpointLeaseInput, CreateApplicationInput, DescribeApplicationInput, ErrorKind,
    InitialPosition, Lease, ListLeasesInput, ReleaseLeaseInput, RenewLeaseInput, SequenceNumber, StealLeaseInput,
    TakeLeaseInput, Timestamp,
};

use crate::consumer::{read_shard_batches, BatchSink, ReadConfig, ReadMode, ShardOutcome, Start};
use crate::errors::ClientError;
use crate::transport::Transport;
#[cfg(doc)]
use crate::transport::CALL_TIMEOUT_MS;

/// Longest wait between retries of a failed lease call inside a shard task.
const LEASE_RETRY_MAX_MS: u64 = 1_000;
/// First wait after a failed lease call, doubled up to [`LEASE_RETRY_MAX_MS`].
const LEASE_RETRY_BASE_MS: u64 = 50;
/// How often a paused shard task (its lease not known to be valid) looks again.
const VALIDITY_POLL_MS: u64 = 20;
/// How often the worker's loop looks at the shutdown flag between taker rounds.
const SHUTDOWN_POLL_MS: u64 = 50;

/// What the worker is told.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub stream: String,
    pub application: String,
    pub worker_id: String,
    /// If the application does not exist, create it with these (several workers starting at
    /// once race; the losers use the winner's).
    pub create: Option<CreateSettings>,
    /// Polling or SubscribeToShard (`stop_when_caught_up` is ignored: a worker follows its
    /// shards until they end or it loses them).
    pub mode: ReadMode,
    /// Checkpoint what was processed this often (KCL applications typically do it every N
    /// seconds): after a takeover, at most about this much is processed again.
    pub checkpoint_interval_ms: u64,
    /// How often the lease taker runs; `None`: half the lease duration.
    pub taker_interval_ms: Option<u64>,
    pub balancer: BalancerConfig,
}

/// The application's settings when the worker creates it.
#[derive(Debug, Clone)]
pub struct CreateSettings {
    pub initial_position: InitialPosition,
    pub lease_duration_ms: i64,
}

/// What a worker did, for logs and tests (the CLI prints them as JSON lines on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// The worker holds the lease at `counter` (taken, or stolen from `from`).
    LeaseTaken { shard_id: String, counter: i64, stolen_from: Option<String> },
    /// The lease is lost: another worker holds it (`reason` says how the worker learned it).
    LeaseLost { shard_id: String, reason: String },
    /// A checkpoint was confirmed by the daemon, written at lease counter `counter`.
    Checkpointed { shard_id: String, checkpoint: String, counter: i64 },
    /// The shard was processed to its end (SHARD_END is checkpointed).
    ShardEnded { shard_id: String },
    /// The lease was given up (after SHARD_END, or at shutdown after the final checkpoint).
    LeaseReleased { shard_id: String },
    /// Something went wrong that the worker survives (a read error, undeliverable records).
    Warning { shard_id: Option<String>, message: String },
}

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the application {application} of stream {stream}: {error}")]
    Application { stream: String, application: String, error: Box<ClientError> },
    #[error("the lease {lease_key} is not a shard id")]
    BadLeaseKey { lease_key: String },
}

/// What a worker uses while it runs; shared by its tasks (one executor, so `Rc`).
struct Context {
    config: WorkerConfig,
    me: WorkerId,
    leases: Rc<Transport>,
    reads: Rc<Transport>,
    lease_duration_ms: i64,
    /// The application's `AT_TIMESTAMP` start, for leases still at that sentinel.
    initial_timestamp_ms: u64,
    started: Instant,
    on_event: Box<dyn Fn(WorkerEvent)>,
}

impl Context {
    /// This worker's clock: monotonic ms since it started (a pause keeps it running).
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn event(&self, event: WorkerEvent) {
        (self.on_event)(event)
    }

    fn named(&self) -> (Option<String>, Option<String>) {
        (Some(self.config.stream.clone()), Some(self.config.application.clone()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Held,
    Lost,
    ShutdownRequested,
}

/// A lease this worker holds, shared between the taker, the renewer and its shard task.
struct Held {
    lease_key: String,
    counter: i64,
    /// Local ms until which the lease is surely still ours (see the module doc).
    valid_until_ms: Cell<u64>,
    hold: Cell<Hold>,
    /// The shard task ended (the lease is released, lost or finished).
    done: Cell<bool>,
}

impl Held {
    fn valid(&self, now_ms: u64) -> bool {
        self.hold.get() != Hold::Lost && now_ms < self.valid_until_ms.get()
    }
}

/// The lease's checkpoint as `kpl` has it.
fn checkpoint_of(lease: &Lease, initial_timestamp_ms: u64) -> Option<Checkpoint> {
    Some(match lease.checkpoint.as_str() {
        "TRIM_HORIZON" => Checkpoint::TrimHorizon,
        "LATEST" => Checkpoint::Latest,
        "AT_TIMESTAMP" => Checkpoint::AtTimestamp(initial_timestamp_ms),
        "SHARD_END" => Checkpoint::ShardEnd,
        sequence => Checkpoint::At(Position {
            sequence_number: sequence.parse::<SequenceNumber>().ok()?,
            sub_sequence_number: lease.checkpoint_sub_sequence_number.max(0) as u64,
        }),
    })
}

/// The members of CheckpointLease for a checkpoint a worker writes.
fn checkpoint_members(checkpoint: &Checkpoint) -> (String, Option<i64>) {
    match checkpoint {
        Checkpoint::At(position) => {
            (position.sequence_number.to_string(), Some(position.sub_sequence_number.min(i64::MAX as u64) as i64))
        }
        Checkpoint::ShardEnd => ("SHARD_END".into(), None),
        // The processor's checker lets only positions and SHARD_END through.
        other => unreachable!("a worker never writes the starting point {other:?}"),
    }
}

fn shard_number(lease_key: &str) -> Result<ShardId, WorkerError> {
    lease_key.parse().map_err(|_| WorkerError::BadLeaseKey { lease_key: lease_key.to_owned() })
}

/// Runs one worker until `stop` is set, then shuts down gracefully (final checkpoints, leases
/// released). `new_processor` makes the processor of each lease taken; `on_event` hears what
/// the worker does.
pub async fn run_worker<P, F>(
    leases: Rc<Transport>,
    reads: Rc<Transport>,
    config: WorkerConfig,
    mut new_processor: F,
    on_event: impl Fn(WorkerEvent) + 'static,
    stop: Arc<AtomicBool>,
) -> Result<(), WorkerError>
where
    P: RecordProcessor + 'static,
    F: FnMut(ShardId) -> P,
{
    let description = application(&leases, &config).await?;
    let lease_duration_ms = description.lease_duration_millis;
    let initial_timestamp_ms =
        description.initial_position.timestamp.map(|at| at.epoch_ms().max(0) as u64).unwrap_or_default();
    let ctx = Rc::new(Context {
        me: WorkerId(config.worker_id.clone()),
        config,
        leases,
        reads,
        lease_duration_ms,
        initial_timestamp_ms,
        started: Instant::now(),
        on_event: Box::new(on_event),
    });
    let held: Rc<RefCell<BTreeMap<String, Rc<Held>>>> = Rc::default();
    let observer = Rc::new(RefCell::new(ExpiryObserver::new()));
    let renewer_stop = Rc::new(Cell::new(false));
    let renewer = glommio::spawn_local(renew_loop(ctx.clone(), held.clone(), observer.clone(), renewer_stop.clone()));
    let taker_interval_ms =
        ctx.config.taker_interval_ms.unwrap_or((lease_duration_ms.max(2) as u64) / 2).max(SHUTDOWN_POLL_MS);
    let mut rng = StdRng::from_entropy();
    let mut next_round_ms = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if ctx.now_ms() >= next_round_ms {
            next_round_ms = ctx.now_ms() + taker_interval_ms;
            held.borrow_mut().retain(|_, lease| !lease.done.get());
            if let Err(error) = take_round(&ctx, &held, &observer, &mut rng, &mut new_processor).await {
                ctx.event(WorkerEvent::Warning { shard_id: None, message: format!("lease taker: {error}") });
            }
        }
        glommio::timer::sleep(Duration::from_millis(SHUTDOWN_POLL_MS)).await;
    }
    // Graceful shutdown: every shard task checkpoints and releases; the renewer keeps the
    // leases alive meanwhile.
    for lease in held.borrow().values() {
        if lease.hold.get() == Hold::Held {
            lease.hold.set(Hold::ShutdownRequested);
        }
    }
    while held.borrow().values().any(|lease| !lease.done.get()) {
        glommio::timer::sleep(Duration::from_millis(VALIDITY_POLL_MS)).await;
    }
    renewer_stop.set(true);
    renewer.await;
    Ok(())
}

/// Finds the application, creating it first if it is missing and the config says how.
async fn application(leases: &Transport, config: &WorkerConfig) -> Result<ApplicationDescription, WorkerError> {
    let error = |error| WorkerError::Application {
        stream: config.stream.clone(),
        application: config.application.clone(),
        error: Box::new(error),
    };
    let describe = DescribeApplicationInput {
        stream_name: Some(config.stream.clone()),
        application_name: Some(config.application.clone()),
        ..Default::default()
    };
    match leases.call(&describe).await.map(|output| output.application_description) {
        Ok(description) => return Ok(description),
        Err(ClientError::Service(e)) if e.kind == ErrorKind::ResourceNotFound && config.create.is_some() => {}
        Err(e) => return Err(error(e)),
    }
    let settings = config.create.as_ref().expect("checked above");
    let create = CreateApplicationInput {
        stream_name: Some(config.stream.clone()),
        application_name: config.application.clone(),
        initial_position: Some(settings.initial_position.clone()),
        lease_duration_millis: Some(settings.lease_duration_ms),
        ..Default::default()
    };
    match leases.call(&create).await.map(|output| output.application_description) {
        Ok(description) => Ok(description),
        // Another worker created it first.
        Err(ClientError::Service(e)) if e.kind == ErrorKind::ResourceInUse => {
            leases.call(&describe).await.map(|output| output.application_description).map_err(error)
        }
        Err(e) => Err(error(e)),
    }
}

/// Every lease of the application, every page.
async fn list_leases(ctx: &Context) -> Result<Vec<Lease>, ClientError> {
    let mut all = Vec::new();
    let mut next_token = None;
    loop {
        let (stream_name, application_name) = ctx.named();
        let input = ListLeasesInput { stream_name, application_name, next_token, ..Default::default() };
        let page = ctx.leases.call(&input).await?;
        all.extend(page.leases);
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(all),
        }
    }
}

/// One round of the lease taker.
async fn take_round<P, F>(
    ctx: &Rc<Context>,
    held: &Rc<RefCell<BTreeMap<String, Rc<Held>>>>,
    observer: &Rc<RefCell<ExpiryObserver>>,
    rng: &mut StdRng,
    new_processor: &mut F,
) -> Result<(), ClientError>
where
    P: RecordProcessor + 'static,
    F: FnMut(ShardId) -> P,
{
    let table = list_leases(ctx).await?;
    let now_ms = ctx.now_ms();
    let mut views = Vec::with_capacity(table.len());
    let mut by_shard: BTreeMap<ShardId, &Lease> = BTreeMap::new();
    {
        let mut observer = observer.borrow_mut();
        for lease in &table {
            let Ok(shard_id) = shard_number(&lease.lease_key) else { continue };
            let Some(checkpoint) = checkpoint_of(lease, ctx.initial_timestamp_ms) else { continue };
            let owner = lease.lease_owner.clone().map(WorkerId);
            let expires_ms = lease.lease_expiration_timestamp.map(Timestamp::epoch_ms);
            let counter = lease.lease_counter.max(0) as u64;
            let expired =
                observer.expired(shard_id, owner.as_ref(), counter, expires_ms, now_ms, ctx.lease_duration_ms);
            let parent_shard_ids = lease.parent_shard_ids.iter().filter_map(|id| shard_number(id).ok()).collect();
            views.push(LeaseView { shard_id, owner, counter, checkpoint, parent_shard_ids, expired });
            by_shard.insert(shard_id, lease);
        }
        observer.retain(&by_shard.keys().copied().collect::<BTreeSet<_>>());
    }
    let decision = decide(&views, &ctx.me, &ctx.config.balancer, rng);
    // Leases the table says are ours but no task works on (a release that failed): take them
    // back, which the daemon allows its owner.
    let orphans: Vec<(ShardId, u64)> = views
        .iter()
        .filter(|view| view.owner.as_ref() == Some(&ctx.me) && view.checkpoint != Checkpoint::ShardEnd)
        .filter(|view| !held.borrow().contains_key(&by_shard[&view.shard_id].lease_key))
        .map(|view| (view.shard_id, view.counter))
        .collect();
    for (shard_id, counter) in decision.take.iter().chain(&orphans) {
        let lease = by_shard[shard_id];
        let (stream_name, application_name) = ctx.named();
        let input = TakeLeaseInput {
            stream_name,
            application_name,
            lease_key: lease.lease_key.clone(),
            worker_id: ctx.me.0.clone(),
            lease_counter: *counter as i64,
            ..Default::default()
        };
        let sent_ms = ctx.now_ms();
        match ctx.leases.call(&input).await.map(|output| output.lease) {
            Ok(taken) => start_shard(ctx, held, observer, sent_ms, taken, None, new_processor),
            // Someone else won it, or it is not expired on the daemon's clock yet.
            Err(ClientError::Service(e))
                if matches!(e.kind, ErrorKind::ResourceInUse | ErrorKind::ResourceNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    for (shard_id, counter) in &decision.steal {
        let lease = by_shard[shard_id];
        let Some(owner) = lease.lease_owner.clone() else { continue };
        let (stream_name, application_name) = ctx.named();
        let input = StealLeaseInput {
            stream_name,
            application_name,
            lease_key: lease.lease_key.clone(),
            worker_id: ctx.me.0.clone(),
            lease_owner: owner.clone(),
            lease_counter: *counter as i64,
            ..Default::default()
        };
        let sent_ms = ctx.now_ms();
        match ctx.leases.call(&input).await.map(|output| output.lease) {
            Ok(taken) => start_shard(ctx, held, observer, sent_ms, taken, Some(owner), new_processor),
            Err(ClientError::Service(e))
                if matches!(e.kind, ErrorKind::ResourceInUse | ErrorKind::ResourceNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A lease was just taken: records it and starts its shard task.
fn start_shard<P, F>(
    ctx: &Rc<Context>,
    held: &Rc<RefCell<BTreeMap<String, Rc<Held>>>>,
    observer: &Rc<RefCell<ExpiryObserver>>,
    sent_ms: u64,
    lease: Lease,
    stolen_from: Option<String>,
    new_processor: &mut F,
) where
    P: RecordProcessor + 'static,
    F: FnMut(ShardId) -> P,
{
    if let Some(expires) = lease.lease_expiration_timestamp {
        observer.borrow_mut().calibrate(ctx.now_ms(), expires.epoch_ms(), ctx.lease_duration_ms);
    }
    let Ok(shard_id) = shard_number(&lease.lease_key) else { return };
    let handle = Rc::new(Held {
        lease_key: lease.lease_key.clone(),
        counter: lease.lease_counter,
        valid_until_ms: Cell::new(sent_ms + ctx.lease_duration_ms.max(0) as u64),
        hold: Cell::new(Hold::Held),
        done: Cell::new(false),
    });
    ctx.event(WorkerEvent::LeaseTaken { shard_id: lease.lease_key.clone(), counter: lease.lease_counter, stolen_from });
    // A task still working on this lease at an older counter (this worker lost it and took it
    // back before a renewal told it so) is fenced already: stop it before starting anew.
    if let Some(previous) = held.borrow_mut().insert(lease.lease_key.clone(), handle.clone()) {
        lost(ctx, &previous, format!("taken again at counter {}", lease.lease_counter));
    }
    let processor = new_processor(shard_id);
    let ctx = ctx.clone();
    glommio::spawn_local(async move {
        run_shard(&ctx, &handle, lease, processor).await;
        handle.done.set(true);
    })
    .detach();
}

/// Renews every lease held, every third of the lease duration, until told to stop.
async fn renew_loop(
    ctx: Rc<Context>,
    held: Rc<RefCell<BTreeMap<String, Rc<Held>>>>,
    observer: Rc<RefCell<ExpiryObserver>>,
    stop: Rc<Cell<bool>>,
) {
    let interval_ms = (ctx.lease_duration_ms.max(3) as u64) / 3;
    let mut next_ms = 0u64;
    while !stop.get() {
        if ctx.now_ms() >= next_ms {
            next_ms = ctx.now_ms() + interval_ms;
            let leases: Vec<Rc<Held>> = held
                .borrow()
                .values()
                .filter(|lease| !lease.done.get() && lease.hold.get() != Hold::Lost)
                .cloned()
                .collect();
            let renewals: Vec<_> = leases
                .into_iter()
                .map(|lease| {
                    let (ctx, observer) = (ctx.clone(), observer.clone());
                    glommio::spawn_local(async move { renew(&ctx, &observer, &lease).await })
                })
                .collect();
            for renewal in renewals {
                renewal.await;
            }
        }
        glommio::timer::sleep(Duration::from_millis(VALIDITY_POLL_MS)).await;
    }
}

async fn renew(ctx: &Context, observer: &RefCell<ExpiryObserver>, lease: &Held) {
    let (stream_name, application_name) = ctx.named();
    let input = RenewLeaseInput {
        stream_name,
        application_name,
        lease_key: lease.lease_key.clone(),
        worker_id: ctx.me.0.clone(),
        lease_counter: lease.counter,
        ..Default::default()
    };
    let sent_ms = ctx.now_ms();
    match ctx.leases.call(&input).await.map(|output| output.lease) {
        Ok(renewed) => {
            if lease.hold.get() != Hold::Lost {
                lease.valid_until_ms.set(sent_ms + ctx.lease_duration_ms.max(0) as u64);
            }
            if let Some(expires) = renewed.lease_expiration_timestamp {
                observer.borrow_mut().calibrate(ctx.now_ms(), expires.epoch_ms(), ctx.lease_duration_ms);
            }
        }
        Err(ClientError::Service(e)) if matches!(e.kind, ErrorKind::LeaseLost | ErrorKind::ResourceNotFound) => {
            lost(ctx, lease, format!("renewal refused: {}", e.message));
        }
        // A transient failure: the lease stays valid until its local validity runs out; the
        // shard task pauses then, and the next renewal decides.
        Err(e) => ctx.event(WorkerEvent::Warning {
            shard_id: Some(lease.lease_key.clone()),
            message: format!("renewal failed: {e}"),
        }),
    }
}

fn lost(ctx: &Context, lease: &Held, reason: String) {
    if lease.hold.get() != Hold::Lost {
        lease.hold.set(Hold::Lost);
        ctx.event(WorkerEvent::LeaseLost { shard_id: lease.lease_key.clone(), reason });
    }
}

/// Feeds one lease's records to its `ShardConsumer`, writing the checkpoints it asks for.
struct LeaseSink<'a, P> {
    ctx: &'a Context,
    lease: &'a Held,
    consumer: ShardConsumer<P>,
    range: HashKeyRange,
    last_checkpoint_ms: u64,
}

impl<P: RecordProcessor> LeaseSink<'_, P> {
    /// Waits while the lease is not known to be valid (a renewal is late); false once it is
    /// lost or the worker shuts down.
    async fn still_held(&self) -> bool {
        loop {
            match self.lease.hold.get() {
                Hold::Lost | Hold::ShutdownRequested => return false,
                Hold::Held if self.lease.valid(self.ctx.now_ms()) => return true,
                Hold::Held => glommio::timer::sleep(Duration::from_millis(VALIDITY_POLL_MS)).await,
            }
        }
    }

    /// Checkpoints what was processed if the interval has passed, then writes what is queued.
    async fn checkpoint_if_due(&mut self) -> bool {
        if self.ctx.now_ms().saturating_sub(self.last_checkpoint_ms) >= self.ctx.config.checkpoint_interval_ms {
            self.last_checkpoint_ms = self.ctx.now_ms();
            let _ = self.consumer.checkpoint_processed();
        }
        self.run_actions().await
    }

    /// Does what the consumer asks; false once the lease is lost.
    async fn run_actions(&mut self) -> bool {
        while let Some(action) = self.consumer.poll_action() {
            match action {
                Action::Checkpoint(checkpoint) => {
                    // Checked again right before the write: processing the batch may have
                    // taken long enough (or the worker may have been paused) for the lease to
                    // lapse since `deliver` looked. (A shutdown's last checkpoint goes as it is;
                    // the daemon fences it if the lease has moved on.)
                    if self.lease.hold.get() == Hold::Held && !self.still_held().await {
                        return false;
                    }
                    let result = write_checkpoint(self.ctx, self.lease, &checkpoint).await;
                    let refused = result.is_err();
                    if result.is_ok() {
                        let (text, _) = checkpoint_members(&checkpoint);
                        self.ctx.event(WorkerEvent::Checkpointed {
                            shard_id: self.lease.lease_key.clone(),
                            checkpoint: text,
                            counter: self.lease.counter,
                        });
                    }
                    self.consumer.on_checkpoint_result(checkpoint, result);
                    if refused {
                        return false;
                    }
                }
                Action::ReleaseLease => release(self.ctx, self.lease).await,
                Action::ShardFinished => {
                    self.ctx.event(WorkerEvent::ShardEnded { shard_id: self.lease.lease_key.clone() });
                    release(self.ctx, self.lease).await;
                }
            }
        }
        true
    }

    fn report(&self, issues: Vec<DeaggregationIssue>) {
        for issue in issues {
            self.ctx.event(WorkerEvent::Warning {
                shard_id: Some(self.lease.lease_key.clone()),
                message: format!("records not delivered: {issue:?}"),
            });
        }
    }
}

impl<P: RecordProcessor> BatchSink for LeaseSink<'_, P> {
    async fn deliver(&mut self, records: Vec<ReceivedRecord>) -> bool {
        if !self.still_held().await {
            return false;
        }
        match self.consumer.on_records(records, Some(self.range)) {
            Ok(issues) => self.report(issues),
            Err(error) => {
                self.ctx.event(WorkerEvent::Warning {
                    shard_id: Some(self.lease.lease_key.clone()),
                    message: format!("the processor's lifecycle refused a batch: {error}"),
                });
                return false;
            }
        }
        self.checkpoint_if_due().await
    }

    async fn idle(&mut self) -> bool {
        self.still_held().await && self.checkpoint_if_due().await
    }

    fn stopped(&self) -> bool {
        self.lease.hold.get() != Hold::Held
    }
}

/// Writes a checkpoint at the lease's counter. Transient failures are retried while the lease
/// is valid; SHARD_END on a shard the daemon does not know as closed yet (the reshard's last
/// step is still being recorded) likewise. `Err` means the lease is lost (or could not be
/// confirmed before it lapsed, which ends in the same place).
async fn write_checkpoint(ctx: &Context, lease: &Held, checkpoint: &Checkpoint) -> Result<(), CheckpointRefused> {
    let (text, sub) = checkpoint_members(checkpoint);
    let mut wait_ms = LEASE_RETRY_BASE_MS;
    loop {
        let (stream_name, application_name) = ctx.named();
        let input = CheckpointLeaseInput {
            stream_name,
            application_name,
            lease_key: lease.lease_key.clone(),
            worker_id: ctx.me.0.clone(),
            lease_counter: lease.counter,
            checkpoint: text.clone(),
            checkpoint_sub_sequence_number: sub,
            ..Default::default()
        };
        let error = match ctx.leases.call(&input).await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        match error.code() {
            Some(ErrorKind::LeaseLost | ErrorKind::ResourceNotFound) => {
                lost(ctx, lease, format!("checkpoint refused: {error}"));
                return Err(CheckpointRefused);
            }
            Some(ErrorKind::InvalidArgument) if *checkpoint != Checkpoint::ShardEnd => {
                ctx.event(WorkerEvent::Warning {
                    shard_id: Some(lease.lease_key.clone()),
                    message: format!("checkpoint {text} refused: {error}"),
                });
                return Err(CheckpointRefused);
            }
            _ => {}
        }
        if !lease.valid(ctx.now_ms()) {
            lost(ctx, lease, format!("checkpoint not confirmed before the lease lapsed: {error}"));
            return Err(CheckpointRefused);
        }
        glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
        wait_ms = (wait_ms * 2).min(LEASE_RETRY_MAX_MS);
    }
}

/// Gives the lease up, if it is still ours (a failure leaves it to expire).
async fn release(ctx: &Context, lease: &Held) {
    if lease.hold.get() == Hold::Lost {
        return;
    }
    let (stream_name, application_name) = ctx.named();
    let input = ReleaseLeaseInput {
        stream_name,
        application_name,
        lease_key: lease.lease_key.clone(),
        worker_id: ctx.me.0.clone(),
        lease_counter: lease.counter,
        ..Default::default()
    };
    match ctx.leases.call(&input).await {
        Ok(_) => {
            lease.hold.set(Hold::Lost);
            ctx.event(WorkerEvent::LeaseReleased { shard_id: lease.lease_key.clone() });
        }
        Err(error) => ctx.event(WorkerEvent::Warning {
            shard_id: Some(lease.lease_key.clone()),
            message: format!("release failed (the lease will expire instead): {error}"),
        }),
    }
}

/// One lease's shard task.
async fn run_shard<P: RecordProcessor>(ctx: &Context, lease: &Held, taken: Lease, processor: P) {
    let Ok(shard_id) = shard_number(&taken.lease_key) else { return };
    let Some(checkpoint) = checkpoint_of(&taken, ctx.initial_timestamp_ms) else {
        ctx.event(WorkerEvent::Warning {
            shard_id: Some(taken.lease_key.clone()),
            message: format!("the lease's checkpoint {:?} is not one a worker reads", taken.checkpoint),
        });
        release(ctx, lease).await;
        return;
    };
    let mut consumer = ShardConsumer::new(shard_id, checkpoint, processor);
    let start = match consumer.start() {
        Ok(StartingPosition::TrimHorizon) => Start::TrimHorizon,
        Ok(StartingPosition::Latest) => Start::Latest,
        Ok(StartingPosition::AtTimestamp(ms)) => Start::AtTimestamp(Timestamp::from_epoch_ms(ms as i64)),
        Ok(StartingPosition::AtSequenceNumber { sequence_number, .. }) => Start::AtSequenceNumber(sequence_number),
        // SHARD_END leases are never taken (the taker skips them).
        Ok(StartingPosition::ShardEnd) | Err(_) => {
            release(ctx, lease).await;
            return;
        }
    };
    let range =
        HashKeyRange { start: taken.hash_key_range.starting_hash_key, end: taken.hash_key_range.ending_hash_key };
    let mut sink = LeaseSink { ctx, lease, consumer, range, last_checkpoint_ms: ctx.now_ms() };
    let read = ReadConfig { start: start.clone(), mode: ctx.config.mode.clone(), stop_when_caught_up: false };
    let model_shard = shard_id.to_model();
    let outcome = read_shard_batches(&ctx.reads, &ctx.config.stream, &model_shard, start, &read, &mut sink).await;
    match outcome {
        Ok(ShardOutcome::Ended) => {
            // Checkpoint what is processed first, then SHARD_END (which the processor must
            // ask for in `shard_ended`); the lease is released once SHARD_END is durable.
            let _ = sink.consumer.checkpoint_processed();
            if !sink.run_actions().await {
                sink.consumer.on_lease_lost();
                return;
            }
            if let Err(error) = sink.consumer.on_shard_end() {
                ctx.event(WorkerEvent::Warning { shard_id: Some(taken.lease_key.clone()), message: error.to_string() });
                release(ctx, lease).await;
                return;
            }
            if !sink.run_actions().await {
                sink.consumer.on_lease_lost();
            }
        }
        Ok(ShardOutcome::Abandoned | ShardOutcome::CaughtUp) | Err(_) => {
            if let Err(error) = &outcome {
                ctx.event(WorkerEvent::Warning {
                    shard_id: Some(taken.lease_key.clone()),
                    message: format!("reading the shard failed: {error}"),
                });
            }
            match lease.hold.get() {
                Hold::Lost => sink.consumer.on_lease_lost(),
                // Shutdown (or a read that failed for good): checkpoint, then release.
                Hold::ShutdownRequested | Hold::Held => {
                    if sink.consumer.state() == ConsumerState::Processing && lease.valid(ctx.now_ms()) {
                        let _ = sink.consumer.on_shutdown_requested();
                        sink.run_actions().await;
                    } else {
                        sink.consumer.on_lease_lost();
                    }
                }
            }
        }
    }
}
