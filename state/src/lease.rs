//! Consumer groups: applications, and one lease per application and shard, kept by the daemon
//! instead of a DynamoDB table (issue 14). The vocabulary is KCL's lease table: lease key
//! (the shard id), lease owner, lease counter, checkpoint and sub-sequence number,
//! owner switches since checkpoint, parent and child shard ids.
//!
//! The lease counter is the fencing token: it grows by one whenever ownership changes (take,
//! steal, release), never otherwise, so no two workers ever hold one lease at the same counter.
//! Renewals and checkpoints name the counter the worker holds and are refused once it moved:
//! a worker whose lease was taken while it was paused cannot checkpoint when it wakes.
//!
//! Unlike KCL on DynamoDB, a renewal does not bump the counter: KCL needs that because its
//! workers judge expiry by watching the counter change on their own clocks; here the daemon
//! keeps the expiry time itself, and a renewal racing a checkpoint of the same worker must not
//! fence it.

use crate::ids::{ApplicationId, ShardNumber, ShardUid, StreamUid, WorkerId};
use crate::limits::{LEASE_DURATION_MS_MAX, LEASE_DURATION_MS_MIN, SHARD_PARENTS_MAX};
use crate::machine::{InvalidCommand, Machine, RestoreError};
use crate::stream::{ShardInfo, StreamEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a new application's workers start in the shards that exist when it is created
/// (KCL's `initialPositionInStream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitialPosition {
    TrimHorizon,
    Latest,
    AtTimestamp { timestamp_ms: i64 },
}

/// How far a lease's shard has been processed (KCL's `ExtendedSequenceNumber`: a sequence
/// number and a sub-sequence number for KPL-aggregated records, or a sentinel).
///
/// Order: the three starting sentinels, then sequence numbers (and sub-sequence numbers), then
/// SHARD_END. A checkpoint never moves backwards in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    /// Start at the application's initial timestamp.
    AtTimestamp,
    Sequence {
        sequence_number: u128,
        sub_sequence_number: u64,
    },
    /// Every record of the (closed) shard was processed: its children may start.
    ShardEnd,
}

impl Checkpoint {
    fn rank(self) -> (u8, u128, u64) {
        match self {
            Checkpoint::TrimHorizon | Checkpoint::Latest | Checkpoint::AtTimestamp => (0, 0, 0),
            Checkpoint::Sequence { sequence_number, sub_sequence_number } => (1, sequence_number, sub_sequence_number),
            Checkpoint::ShardEnd => (2, 0, 0),
        }
    }

    /// Whether `self` is at or after `other` (sentinels are all equal to each other).
    pub fn is_at_or_after(self, other: Checkpoint) -> bool {
        self.rank() >= other.rank()
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checkpoint::TrimHorizon => f.write_str("TRIM_HORIZON"),
            Checkpoint::Latest => f.write_str("LATEST"),
            Checkpoint::AtTimestamp => f.write_str("AT_TIMESTAMP"),
            Checkpoint::Sequence { sequence_number, sub_sequence_number } => {
                write!(f, "{sequence_number}/{sub_sequence_number}")
            }
            Checkpoint::ShardEnd => f.write_str("SHARD_END"),
        }
    }
}

/// One application's claim on one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub shard: ShardInfo,
    /// The shards a reshard made from this one.
    pub children: Vec<ShardUid>,
    /// The shard takes no new records (a reshard closed it): SHARD_END may be checkpointed.
    pub closed: bool,
    pub owner: Option<WorkerId>,
    /// The fencing token: +1 on every change of owner.
    pub counter: u64,
    /// When the owner's claim lapses unless renewed, epoch ms (0 while unowned).
    pub expires_ms: i64,
    pub checkpoint: Checkpoint,
    /// How often the lease changed owner since its last checkpoint (KCL reports it; a high
    /// value points at a shard whose records make workers fail).
    pub owner_switches_since_checkpoint: u64,
}

impl Lease {
    /// The lease key, as in KCL's single-stream lease table: the shard id.
    pub fn key(&self) -> String {
        self.shard.number.shard_id()
    }

    /// Unowned, or owned by a worker that did not renew in time.
    pub fn is_available(&self, now_ms: i64) -> bool {
        self.owner.is_none() || self.expires_ms <= now_ms
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: ApplicationId,
    pub name: String,
    pub stream: StreamUid,
    pub initial_position: InitialPosition,
    pub lease_duration_ms: i64,
    pub created_ms: i64,
    pub leases: BTreeMap<ShardUid, Lease>,
}

impl Application {
    /// The lease whose key (shard id) is `shard_number`, for callers that name leases as KCL
    /// does.
    pub fn lease_by_number(&self, number: ShardNumber) -> Option<&Lease> {
        self.leases.values().find(|lease| lease.shard.number == number)
    }

    /// The parents of `lease` whose leases still exist and have not reached SHARD_END: until
    /// there are none, the lease cannot be taken. A parent whose lease is gone (its records
    /// expired, or it predates the application) blocks nothing.
    pub fn unfinished_parents(&self, lease: &Lease) -> Vec<ShardUid> {
        lease
            .shard
            .parents
            .iter()
            .filter(|parent| self.leases.get(parent).is_some_and(|p| p.checkpoint != Checkpoint::ShardEnd))
            .copied()
            .collect()
    }
}

/// A shard given to CreateApplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShard {
    pub info: ShardInfo,
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseCommand {
    /// Creates the application with a lease for every shard given. Applying it again (a
    /// restart finishing a creation) changes nothing.
    CreateApplication {
        application: ApplicationId,
        name: String,
        stream: StreamUid,
        initial_position: InitialPosition,
        lease_duration_ms: i64,
        shards: Vec<NewShard>,
    },
    DeleteApplication {
        application: ApplicationId,
    },
    /// Takes an unowned or expired lease, if its counter is still `lease_counter` (what the
    /// worker saw when it chose the lease) and its parents reached SHARD_END.
    Take {
        application: ApplicationId,
        shard: ShardUid,
        worker: WorkerId,
        lease_counter: u64,
    },
    /// Extends the worker's claim, if it still holds the lease at `lease_counter`.
    Renew {
        application: ApplicationId,
        shard: ShardUid,
        worker: WorkerId,
        lease_counter: u64,
    },
    /// Gives the lease up (graceful shutdown, or handing it over), if held at `lease_counter`.
    Release {
        application: ApplicationId,
        shard: ShardUid,
        worker: WorkerId,
        lease_counter: u64,
    },
    /// Takes a lease from a live owner, for balancing (KCL's lease stealing), if it is still
    /// held by `lease_owner` at `lease_counter`.
    Steal {
        application: ApplicationId,
        shard: ShardUid,
        worker: WorkerId,
        lease_owner: WorkerId,
        lease_counter: u64,
    },
    /// Records progress, if the worker still holds the lease at `lease_counter`.
    Checkpoint {
        application: ApplicationId,
        shard: ShardUid,
        worker: WorkerId,
        lease_counter: u64,
        checkpoint: Checkpoint,
    },
}

impl LeaseCommand {
    pub fn application(&self) -> ApplicationId {
        match self {
            LeaseCommand::CreateApplication { application, .. }
            | LeaseCommand::DeleteApplication { application }
            | LeaseCommand::Take { application, .. }
            | LeaseCommand::Renew { application, .. }
            | LeaseCommand::Release { application, .. }
            | LeaseCommand::Steal { application, .. }
            | LeaseCommand::Checkpoint { application, .. } => *application,
        }
    }

    /// Checks what the types cannot: names, bounds, list lengths.
    pub fn validate(&self) -> Result<(), InvalidCommand> {
        if let LeaseCommand::CreateApplication { name, lease_duration_ms, shards, .. } = self {
            if !crate::ids::is_valid_name(name) {
                return Err(InvalidCommand::Name);
            }
            if !(LEASE_DURATION_MS_MIN..=LEASE_DURATION_MS_MAX).contains(lease_duration_ms) {
                return Err(InvalidCommand::LeaseDuration(*lease_duration_ms));
            }
            if shards.iter().any(|shard| shard.info.parents.len() > SHARD_PARENTS_MAX) {
                return Err(InvalidCommand::TooManyParents);
            }
        }
        Ok(())
    }
}

/// What a successful lease command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseReply {
    /// The application exists (created now, or already).
    Created {
        lease_count: usize,
    },
    Deleted,
    /// The lease after the change.
    Lease(Lease),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("application {0} does not exist")]
    ApplicationNotFound(ApplicationId),
    #[error("lease {lease_key} does not exist")]
    LeaseNotFound { lease_key: String },
    #[error("lease {lease_key} is held by {owner} until {expires_ms} (epoch ms)")]
    LeaseHeld { lease_key: String, owner: WorkerId, expires_ms: i64 },
    #[error(
        "lease {lease_key} is held by {owner:?} at counter {counter}, not by {expected_owner:?} at counter {expected_counter}"
    )]
    ConditionFailed {
        lease_key: String,
        expected_owner: Option<WorkerId>,
        expected_counter: u64,
        owner: Option<WorkerId>,
        counter: u64,
    },
    #[error("worker {worker} no longer holds lease {lease_key} at counter {lease_counter}: it is held by {owner:?} at counter {counter}")]
    LeaseLost { lease_key: String, worker: WorkerId, lease_counter: u64, owner: Option<WorkerId>, counter: u64 },
    #[error("lease {lease_key} cannot be taken before its parent leases {parents:?} reach SHARD_END")]
    ParentsNotFinished { lease_key: String, parents: Vec<String> },
    #[error("checkpoint {requested} of lease {lease_key} is before its current checkpoint {current}")]
    CheckpointBackwards { lease_key: String, current: Checkpoint, requested: Checkpoint },
    #[error("lease {lease_key} cannot be checkpointed at SHARD_END: its shard is still open")]
    ShardNotClosed { lease_key: String },
    #[error("a worker checkpoints a sequence number or SHARD_END, not {0}")]
    InvalidCheckpoint(Checkpoint),
    #[error("worker {worker} already holds lease {lease_key}: renew it instead of stealing it")]
    AlreadyOwner { lease_key: String, worker: WorkerId },
}

/// The error types the lease operations answer with (docs/clients.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseErrorKind {
    /// `ResourceNotFoundException`
    ResourceNotFound,
    /// `ResourceInUseException`: the lease is someone else's, or moved since it was observed.
    ResourceInUse,
    /// `LeaseLostException` (Sluice-specific): stop processing the shard.
    LeaseLost,
    /// `InvalidArgumentException`
    InvalidArgument,
}

impl LeaseError {
    pub fn kind(&self) -> LeaseErrorKind {
        match self {
            LeaseError::ApplicationNotFound(_) | LeaseError::LeaseNotFound { .. } => LeaseErrorKind::ResourceNotFound,
            LeaseError::LeaseHeld { .. }
            | LeaseError::ConditionFailed { .. }
            | LeaseError::ParentsNotFinished { .. } => LeaseErrorKind::ResourceInUse,
            LeaseError::LeaseLost { .. } => LeaseErrorKind::LeaseLost,
            LeaseError::CheckpointBackwards { .. }
            | LeaseError::ShardNotClosed { .. }
            | LeaseError::InvalidCheckpoint(_)
            | LeaseError::AlreadyOwner { .. } => LeaseErrorKind::InvalidArgument,
        }
    }
}

pub type LeaseOutcome = Result<LeaseReply, LeaseError>;

/// Every application of one core, and their leases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    applications: BTreeMap<ApplicationId, Application>,
}

/// How the lease state is written into a snapshot: an application, then its leases in chunks
/// of at most [`SNAPSHOT_ITEM_BYTES_MAX`](crate::limits::SNAPSHOT_ITEM_BYTES_MAX) bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseItem {
    Application {
        id: ApplicationId,
        name: String,
        stream: StreamUid,
        initial_position: InitialPosition,
        lease_duration_ms: i64,
        created_ms: i64,
    },
    Leases {
        application: ApplicationId,
        leases: Vec<Lease>,
    },
}

impl Leases {
    pub fn application(&self, id: ApplicationId) -> Option<&Application> {
        self.applications.get(&id)
    }

    pub fn applications(&self) -> impl Iterator<Item = &Application> {
        self.applications.values()
    }

    fn lease_mut(&mut self, application: ApplicationId, shard: ShardUid) -> Result<&mut Lease, LeaseError> {
        let app = self.applications.get_mut(&application).ok_or(LeaseError::ApplicationNotFound(application))?;
        app.leases.get_mut(&shard).ok_or_else(|| LeaseError::LeaseNotFound { lease_key: format!("shard uid {shard}") })
    }

    fn create(&mut self, now_ms: i64, command: &LeaseCommand) -> LeaseOutcome {
        let LeaseCommand::CreateApplication { application, name, stream, initial_position, lease_duration_ms, shards } =
            command
        else {
            unreachable!("create is called with CreateApplication");
        };
        if let Some(existing) = self.applications.get(application) {
            return Ok(LeaseReply::Created { lease_count: existing.leases.len() });
        }
        let mut leases = BTreeMap::new();
        for shard in shards {
            // KCL with LATEST does not process shards that are already closed (nothing new will
            // arrive in them): their leases start finished, so their children are takeable.
            let checkpoint = match (initial_position, shard.closed) {
                (InitialPosition::Latest, true) => Checkpoint::ShardEnd,
                (InitialPosition::Latest, false) => Checkpoint::Latest,
                (InitialPosition::TrimHorizon, _) => Checkpoint::TrimHorizon,
                (InitialPosition::AtTimestamp { .. }, _) => Checkpoint::AtTimestamp,
            };
            leases.insert(shard.info.uid, new_lease(shard.info.clone(), shard.closed, checkpoint));
        }
        link_children(&mut leases);
        let lease_count = leases.len();
        self.applications.insert(
            *application,
            Application {
                id: *application,
                name: name.clone(),
                stream: *stream,
                initial_position: *initial_position,
                lease_duration_ms: *lease_duration_ms,
                created_ms: now_ms,
                leases,
            },
        );
        Ok(LeaseReply::Created { lease_count })
    }

    fn take(
        &mut self,
        now_ms: i64,
        application: ApplicationId,
        shard: ShardUid,
        worker: &WorkerId,
        lease_counter: u64,
    ) -> LeaseOutcome {
        let app = self.applications.get(&application).ok_or(LeaseError::ApplicationNotFound(application))?;
        let lease = app
            .leases
            .get(&shard)
            .ok_or_else(|| LeaseError::LeaseNotFound { lease_key: format!("shard uid {shard}") })?;
        if lease.counter != lease_counter {
            return Err(LeaseError::ConditionFailed {
                lease_key: lease.key(),
                expected_owner: lease.owner.clone(),
                expected_counter: lease_counter,
                owner: lease.owner.clone(),
                counter: lease.counter,
            });
        }
        if let Some(owner) = &lease.owner {
            if owner != worker && lease.expires_ms > now_ms {
                return Err(LeaseError::LeaseHeld {
                    lease_key: lease.key(),
                    owner: owner.clone(),
                    expires_ms: lease.expires_ms,
                });
            }
        }
        let blocking = app.unfinished_parents(lease);
        if !blocking.is_empty() {
            let parents = blocking.iter().map(|uid| app.leases[uid].key()).collect();
            return Err(LeaseError::ParentsNotFinished { lease_key: lease.key(), parents });
        }
        let duration_ms = app.lease_duration_ms;
        let lease = self.lease_mut(application, shard)?;
        grant(lease, worker, now_ms.saturating_add(duration_ms));
        Ok(LeaseReply::Lease(lease.clone()))
    }

    fn steal(
        &mut self,
        now_ms: i64,
        application: ApplicationId,
        shard: ShardUid,
        worker: &WorkerId,
        lease_owner: &WorkerId,
        lease_counter: u64,
    ) -> LeaseOutcome {
        let app = self.applications.get(&application).ok_or(LeaseError::ApplicationNotFound(application))?;
        let duration_ms = app.lease_duration_ms;
        let lease = self.lease_mut(application, shard)?;
        if lease.owner.as_ref() != Some(lease_owner) || lease.counter != lease_counter {
            return Err(LeaseError::ConditionFailed {
                lease_key: lease.key(),
                expected_owner: Some(lease_owner.clone()),
                expected_counter: lease_counter,
                owner: lease.owner.clone(),
                counter: lease.counter,
            });
        }
        if worker == lease_owner {
            return Err(LeaseError::AlreadyOwner { lease_key: lease.key(), worker: worker.clone() });
        }
        // An owned lease's parents are finished: it could only be taken once they were.
        grant(lease, worker, now_ms.saturating_add(duration_ms));
        Ok(LeaseReply::Lease(lease.clone()))
    }

    /// The lease, if `worker` holds it at `lease_counter`; else the error that fences it.
    fn held_mut(
        &mut self,
        application: ApplicationId,
        shard: ShardUid,
        worker: &WorkerId,
        lease_counter: u64,
    ) -> Result<&mut Lease, LeaseError> {
        let lease = self.lease_mut(application, shard)?;
        if lease.owner.as_ref() != Some(worker) || lease.counter != lease_counter {
            return Err(LeaseError::LeaseLost {
                lease_key: lease.key(),
                worker: worker.clone(),
                lease_counter,
                owner: lease.owner.clone(),
                counter: lease.counter,
            });
        }
        Ok(lease)
    }

    fn checkpoint(
        &mut self,
        application: ApplicationId,
        shard: ShardUid,
        worker: &WorkerId,
        lease_counter: u64,
        checkpoint: Checkpoint,
    ) -> LeaseOutcome {
        let lease = self.held_mut(application, shard, worker, lease_counter)?;
        match checkpoint {
            Checkpoint::Sequence { .. } => {}
            Checkpoint::ShardEnd if lease.closed => {}
            Checkpoint::ShardEnd => return Err(LeaseError::ShardNotClosed { lease_key: lease.key() }),
            sentinel => return Err(LeaseError::InvalidCheckpoint(sentinel)),
        }
        if !checkpoint.is_at_or_after(lease.checkpoint) {
            return Err(LeaseError::CheckpointBackwards {
                lease_key: lease.key(),
                current: lease.checkpoint,
                requested: checkpoint,
            });
        }
        lease.checkpoint = checkpoint;
        lease.owner_switches_since_checkpoint = 0;
        Ok(LeaseReply::Lease(lease.clone()))
    }

    fn emit_application(app: &Application, emit: &mut dyn FnMut(LeaseItem)) {
        emit(LeaseItem::Application {
            id: app.id,
            name: app.name.clone(),
            stream: app.stream,
            initial_position: app.initial_position,
            lease_duration_ms: app.lease_duration_ms,
            created_ms: app.created_ms,
        });
        crate::machine::chunk_by_size(app.leases.values().cloned(), |leases| {
            emit(LeaseItem::Leases { application: app.id, leases });
        });
    }
}

fn new_lease(shard: ShardInfo, closed: bool, checkpoint: Checkpoint) -> Lease {
    Lease {
        shard,
        children: Vec::new(),
        closed,
        owner: None,
        counter: 0,
        expires_ms: 0,
        checkpoint,
        owner_switches_since_checkpoint: 0,
    }
}

/// Gives `lease` to `worker` until `expires_ms`, moving the fencing token if the owner changes.
fn grant(lease: &mut Lease, worker: &WorkerId, expires_ms: i64) {
    if lease.owner.as_ref() != Some(worker) {
        lease.owner_switches_since_checkpoint += 1;
    }
    lease.owner = Some(worker.clone());
    lease.counter += 1;
    lease.expires_ms = expires_ms;
}

/// Fills every lease's `children` from the other leases' parents (and marks parents closed:
/// a shard with children takes no new records).
fn link_children(leases: &mut BTreeMap<ShardUid, Lease>) {
    let links: Vec<(ShardUid, ShardUid)> =
        leases.values().flat_map(|child| child.shard.parents.iter().map(|parent| (*parent, child.shard.uid))).collect();
    for (parent, child) in links {
        if let Some(parent) = leases.get_mut(&parent) {
            parent.closed = true;
            if !parent.children.contains(&child) {
                parent.children.push(child);
            }
        }
    }
}

impl Machine for Leases {
    type Command = LeaseCommand;
    type Outcome = LeaseOutcome;
    type Item = LeaseItem;

    fn apply(&mut self, now_ms: i64, command: &LeaseCommand) -> LeaseOutcome {
        match command {
            LeaseCommand::CreateApplication { .. } => self.create(now_ms, command),
            LeaseCommand::DeleteApplication { application } => match self.applications.remove(application) {
                Some(_) => Ok(LeaseReply::Deleted),
                None => Err(LeaseError::ApplicationNotFound(*application)),
            },
            LeaseCommand::Take { application, shard, worker, lease_counter } => {
                self.take(now_ms, *application, *shard, worker, *lease_counter)
            }
            LeaseCommand::Renew { application, shard, worker, lease_counter } => {
                let duration_ms = self
                    .applications
                    .get(application)
                    .ok_or(LeaseError::ApplicationNotFound(*application))?
                    .lease_duration_ms;
                let lease = self.held_mut(*application, *shard, worker, *lease_counter)?;
                lease.expires_ms = now_ms.saturating_add(duration_ms);
                Ok(LeaseReply::Lease(lease.clone()))
            }
            LeaseCommand::Release { application, shard, worker, lease_counter } => {
                let lease = self.held_mut(*application, *shard, worker, *lease_counter)?;
                lease.owner = None;
                lease.counter += 1;
                lease.expires_ms = 0;
                Ok(LeaseReply::Lease(lease.clone()))
            }
            LeaseCommand::Steal { application, shard, worker, lease_owner, lease_counter } => {
                self.steal(now_ms, *application, *shard, worker, lease_owner, *lease_counter)
            }
            LeaseCommand::Checkpoint { application, shard, worker, lease_counter, checkpoint } => {
                self.checkpoint(*application, *shard, worker, *lease_counter, *checkpoint)
            }
        }
    }

    fn follow(&mut self, _now_ms: i64, event: &StreamEvent) {
        let stream = event.stream();
        if let StreamEvent::StreamDeleted { .. } = event {
            self.applications.retain(|_, app| app.stream != stream);
            return;
        }
        for app in self.applications.values_mut().filter(|app| app.stream == stream) {
            match event {
                StreamEvent::ShardsCreated { shards, .. } => {
                    for info in shards {
                        // Children start at TRIM_HORIZON, as KCL's: nothing written to them
                        // before their workers start may be skipped.
                        app.leases
                            .entry(info.uid)
                            .or_insert_with(|| new_lease(info.clone(), false, Checkpoint::TrimHorizon));
                    }
                    link_children(&mut app.leases);
                }
                StreamEvent::ShardEnded { shard, .. } => {
                    if let Some(lease) = app.leases.get_mut(shard) {
                        lease.closed = true;
                    }
                }
                StreamEvent::ShardsExpired { shards, .. } => {
                    for shard in shards {
                        app.leases.remove(shard);
                    }
                }
                StreamEvent::RetentionChanged { .. } | StreamEvent::StreamDeleted { .. } => {}
            }
        }
    }

    fn snapshot(&self, emit: &mut dyn FnMut(LeaseItem)) {
        for app in self.applications.values() {
            Leases::emit_application(app, emit);
        }
    }

    fn restore(&mut self, item: LeaseItem) -> Result<(), RestoreError> {
        match item {
            LeaseItem::Application { id, name, stream, initial_position, lease_duration_ms, created_ms } => {
                let app = Application {
                    id,
                    name,
                    stream,
                    initial_position,
                    lease_duration_ms,
                    created_ms,
                    leases: BTreeMap::new(),
                };
                if self.applications.insert(id, app).is_some() {
                    return Err(RestoreError::Duplicate("application"));
                }
            }
            LeaseItem::Leases { application, leases } => {
                let app = self.applications.get_mut(&application).ok_or(RestoreError::Orphan("leases"))?;
                for lease in leases {
                    if app.leases.insert(lease.shard.uid, lease).is_some() {
                        return Err(RestoreError::Duplicate("lease"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: ApplicationId = ApplicationId(1);
    const STREAM: StreamUid = StreamUid(9);

    fn shard(uid: u64, parents: &[u64]) -> ShardInfo {
        ShardInfo {
            uid: ShardUid(uid),
            number: ShardNumber(uid as u32),
            parents: parents.iter().map(|&p| ShardUid(p)).collect(),
            hash_key_start: 0,
            hash_key_end: u128::MAX,
        }
    }

    fn worker(name: &str) -> WorkerId {
        WorkerId::new(name).unwrap()
    }

    fn created(initial_position: InitialPosition, shards: Vec<NewShard>) -> Leases {
        let mut leases = Leases::default();
        let command = LeaseCommand::CreateApplication {
            application: APP,
            name: "app".into(),
            stream: STREAM,
            initial_position,
            lease_duration_ms: 10_000,
            shards,
        };
        assert_eq!(leases.apply(0, &command), Ok(LeaseReply::Created { lease_count: leases_len(&command) }));
        leases
    }

    fn leases_len(command: &LeaseCommand) -> usize {
        match command {
            LeaseCommand::CreateApplication { shards, .. } => shards.len(),
            _ => 0,
        }
    }

    fn open(uid: u64) -> NewShard {
        NewShard { info: shard(uid, &[]), closed: false }
    }

    fn take(leases: &mut Leases, now_ms: i64, uid: u64, who: &str, counter: u64) -> LeaseOutcome {
        leases.apply(
            now_ms,
            &LeaseCommand::Take { application: APP, shard: ShardUid(uid), worker: worker(who), lease_counter: counter },
        )
    }

    fn checkpoint(leases: &mut Leases, uid: u64, who: &str, counter: u64, checkpoint: Checkpoint) -> LeaseOutcome {
        leases.apply(
            0,
            &LeaseCommand::Checkpoint {
                application: APP,
                shard: ShardUid(uid),
                worker: worker(who),
                lease_counter: counter,
                checkpoint,
            },
        )
    }

    fn seq(n: u128) -> Checkpoint {
        Checkpoint::Sequence { sequence_number: n, sub_sequence_number: 0 }
    }

    #[test]
    fn a_taken_lease_fences_its_previous_owner() {
        let mut leases = created(InitialPosition::TrimHorizon, vec![open(1)]);
        assert!(take(&mut leases, 0, 1, "a", 0).is_ok());
        // b cannot take it while a's claim runs; after it lapsed, b can.
        assert!(matches!(take(&mut leases, 9_999, 1, "b", 1), Err(LeaseError::LeaseHeld { .. })));
        let Ok(LeaseReply::Lease(lease)) = take(&mut leases, 10_000, 1, "b", 1) else { panic!() };
        assert_eq!((lease.owner, lease.counter, lease.owner_switches_since_checkpoint), (Some(worker("b")), 2, 2));
        // a wakes up: its checkpoint and renewal at counter 1 are refused.
        let refused = checkpoint(&mut leases, 1, "a", 1, seq(5)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "worker a no longer holds lease shardId-000000000001 at counter 1: it is held by Some(WorkerId(\"b\")) at counter 2"
        );
        assert_eq!(refused.kind(), LeaseErrorKind::LeaseLost);
        let renew = LeaseCommand::Renew { application: APP, shard: ShardUid(1), worker: worker("a"), lease_counter: 1 };
        assert!(matches!(leases.apply(10_001, &renew), Err(LeaseError::LeaseLost { .. })));
        assert!(checkpoint(&mut leases, 1, "b", 2, seq(5)).is_ok());
    }

    #[test]
    fn a_take_with_a_stale_counter_is_refused() {
        let mut leases = created(InitialPosition::Latest, vec![open(1)]);
        assert!(take(&mut leases, 0, 1, "a", 0).is_ok());
        assert!(matches!(take(&mut leases, 50_000, 1, "b", 0), Err(LeaseError::ConditionFailed { counter: 1, .. })));
    }

    #[test]
    fn renewing_extends_without_moving_the_counter() {
        let mut leases = created(InitialPosition::Latest, vec![open(1)]);
        take(&mut leases, 0, 1, "a", 0).unwrap();
        let renew = LeaseCommand::Renew { application: APP, shard: ShardUid(1), worker: worker("a"), lease_counter: 1 };
        let Ok(LeaseReply::Lease(lease)) = leases.apply(9_000, &renew) else { panic!() };
        assert_eq!((lease.counter, lease.expires_ms), (1, 19_000));
        assert!(matches!(take(&mut leases, 15_000, 1, "b", 1), Err(LeaseError::LeaseHeld { .. })));
    }

    #[test]
    fn release_and_steal_move_the_counter() {
        let mut leases = created(InitialPosition::Latest, vec![open(1), open(2)]);
        take(&mut leases, 0, 1, "a", 0).unwrap();
        let steal = LeaseCommand::Steal {
            application: APP,
            shard: ShardUid(1),
            worker: worker("b"),
            lease_owner: worker("a"),
            lease_counter: 1,
        };
        let Ok(LeaseReply::Lease(lease)) = leases.apply(1, &steal) else { panic!() };
        assert_eq!((lease.owner.as_ref(), lease.counter), (Some(&worker("b")), 2));
        assert!(matches!(leases.apply(1, &steal), Err(LeaseError::ConditionFailed { .. })));
        let release =
            LeaseCommand::Release { application: APP, shard: ShardUid(1), worker: worker("b"), lease_counter: 2 };
        let Ok(LeaseReply::Lease(lease)) = leases.apply(2, &release) else { panic!() };
        assert_eq!((lease.owner, lease.counter), (None, 3));
        assert!(matches!(leases.apply(3, &release), Err(LeaseError::LeaseLost { .. })));
        // A released lease is free at once.
        assert!(take(&mut leases, 3, 1, "c", 3).is_ok());
    }

    #[test]
    fn checkpoints_only_move_forward_and_shard_end_needs_a_closed_shard() {
        let mut leases = created(InitialPosition::TrimHorizon, vec![open(1)]);
        take(&mut leases, 0, 1, "a", 0).unwrap();
        assert!(checkpoint(
            &mut leases,
            1,
            "a",
            1,
            Checkpoint::Sequence { sequence_number: 10, sub_sequence_number: 3 }
        )
        .is_ok());
        assert!(checkpoint(
            &mut leases,
            1,
            "a",
            1,
            Checkpoint::Sequence { sequence_number: 10, sub_sequence_number: 3 }
        )
        .is_ok());
        assert!(matches!(
            checkpoint(&mut leases, 1, "a", 1, Checkpoint::Sequence { sequence_number: 10, sub_sequence_number: 2 }),
            Err(LeaseError::CheckpointBackwards { .. })
        ));
        assert!(matches!(
            checkpoint(&mut leases, 1, "a", 1, Checkpoint::TrimHorizon),
            Err(LeaseError::InvalidCheckpoint(_))
        ));
        assert!(matches!(
            checkpoint(&mut leases, 1, "a", 1, Checkpoint::ShardEnd),
            Err(LeaseError::ShardNotClosed { .. })
        ));
        leases.follow(
            0,
            &StreamEvent::ShardEnded { stream: STREAM, shard: ShardUid(1), ending_index: crate::ids::RecordIndex(4) },
        );
        assert!(checkpoint(&mut leases, 1, "a", 1, Checkpoint::ShardEnd).is_ok());
        assert!(matches!(checkpoint(&mut leases, 1, "a", 1, seq(11)), Err(LeaseError::CheckpointBackwards { .. })));
    }

    #[test]
    fn children_wait_for_their_parents_to_reach_shard_end() {
        let mut leases = created(InitialPosition::TrimHorizon, vec![open(1), open(2)]);
        // Merge 1 and 2 into 3.
        leases.follow(0, &StreamEvent::ShardsCreated { stream: STREAM, shards: vec![shard(3, &[1, 2])] });
        let app = leases.application(APP).unwrap();
        assert_eq!(app.leases[&ShardUid(1)].children, vec![ShardUid(3)]);
        assert!(app.leases[&ShardUid(2)].closed);
        assert_eq!(app.leases[&ShardUid(3)].checkpoint, Checkpoint::TrimHorizon);
        let blocked = take(&mut leases, 0, 3, "a", 0).unwrap_err();
        assert_eq!(
            blocked,
            LeaseError::ParentsNotFinished {
                lease_key: "shardId-000000000003".into(),
                parents: vec!["shardId-000000000001".into(), "shardId-000000000002".into()]
            }
        );
        take(&mut leases, 0, 1, "a", 0).unwrap();
        checkpoint(&mut leases, 1, "a", 1, Checkpoint::ShardEnd).unwrap();
        assert!(matches!(take(&mut leases, 0, 3, "a", 0), Err(LeaseError::ParentsNotFinished { .. })));
        // The other parent expires: it no longer blocks.
        leases.follow(0, &StreamEvent::ShardsExpired { stream: STREAM, shards: vec![ShardUid(2)] });
        assert!(take(&mut leases, 0, 3, "a", 0).is_ok());
    }

    #[test]
    fn latest_applications_skip_shards_that_are_already_closed() {
        let leases = created(
            InitialPosition::Latest,
            vec![NewShard { info: shard(1, &[]), closed: true }, NewShard { info: shard(2, &[1]), closed: false }],
        );
        let app = leases.application(APP).unwrap();
        assert_eq!(app.leases[&ShardUid(1)].checkpoint, Checkpoint::ShardEnd);
        assert_eq!(app.leases[&ShardUid(2)].checkpoint, Checkpoint::Latest);
        assert!(app.unfinished_parents(&app.leases[&ShardUid(2)]).is_empty());
    }

    #[test]
    fn deleting_the_stream_removes_its_applications() {
        let mut leases = created(InitialPosition::Latest, vec![open(1)]);
        leases.follow(0, &StreamEvent::StreamDeleted { stream: StreamUid(8) });
        assert!(leases.application(APP).is_some());
        leases.follow(0, &StreamEvent::StreamDeleted { stream: STREAM });
        assert!(leases.application(APP).is_none());
        assert_eq!(take(&mut leases, 0, 1, "a", 0), Err(LeaseError::ApplicationNotFound(APP)));
    }

    #[test]
    fn creating_twice_keeps_the_first() {
        let mut leases = created(InitialPosition::Latest, vec![open(1)]);
        take(&mut leases, 0, 1, "a", 0).unwrap();
        let again = LeaseCommand::CreateApplication {
            application: APP,
            name: "app".into(),
            stream: STREAM,
            initial_position: InitialPosition::TrimHorizon,
            lease_duration_ms: 10_000,
            shards: vec![open(1), open(2)],
        };
        assert_eq!(leases.apply(5, &again), Ok(LeaseReply::Created { lease_count: 1 }));
        assert_eq!(leases.application(APP).unwrap().leases[&ShardUid(1)].counter, 1);
    }
}
