//! The metadata group: the catalog's changes as commands of Raft group 0 on core 0, applied
//! by every node to its catalog in log order, so every node has the same streams, shards,
//! shard uids, sequence-number prefixes, tags, retention, consumers and settings.
//!
//! A command carries everything its change reads besides the catalog and the node's
//! configuration (identity and limits, which every member must be given alike): the
//! proposer's clock where the change records a time (CreateStream's sequence-number epoch, a
//! consumer's registration time, which is part of its ARN, a billing commitment's start), and
//! names already resolved from the request's ARNs. Applying it is then a pure function of the
//! catalog and the command (the same `control::` functions a node alone runs), the same on
//! every node; its outcome (an error included) is the same everywhere too, and the proposer's
//! node answers with it.
//!
//! After a restart the replica reports its committed commands again from the first; the index
//! of the last one applied is kept in `raft/meta.applied`, written after the catalog, so at
//! most the last command is applied twice (a crash between the two writes). Each survives it:
//!
//! - CreateStream, RegisterStreamConsumer: the second time the stream (the consumer) exists,
//!   so it is refused and changes nothing.
//! - DeleteStream, DeregisterStreamConsumer: the second time it is gone: refused (not found),
//!   nothing changes.
//! - Tags (AddTagsToStream, RemoveTagsFromStream, TagResource, UntagResource), resource
//!   policies, enhanced monitoring, UpdateMaxRecordSize, the record distribution: they set
//!   values, so a second application sets the same ones (adding the same tags again does not
//!   grow the count the tag quota checks).
//! - Increase/DecreaseStreamRetentionPeriod: the second time the retention already is the
//!   requested one, which both directions accept and set again.
//! - UpdateAccountSettings: enabling a commitment in force keeps it, disabling one already
//!   ended or already asked to end changes nothing.
//! - BeginSplit, BeginMerge, BeginScaling: the second time the stream is UPDATING (one reshard
//!   at a time), so it is refused and changes nothing.
//! - NextScalingStep: while the step's parents are closing it begins nothing and names them
//!   again (`control::reshard::next_scaling_step`), so it is one step.
//! - FinishClose: sets the same end again (the seal's index, the same on every member).
//! - Barrier: changes nothing.
//! - ReplaceMember: the second time `old` is no member and `new` is one: refused, nothing
//!   changes.
//! - UpdateStreamMode: the second time the stream already is in that mode: refused, nothing
//!   changes.
//! - SetIteratorKey: the catalog keeps the first key it is given, so a second one (a replay,
//!   or a new leader whose catalog lagged proposing one more) changes nothing.
//!
//! Members must all run the same build: a command an older build does not know does not
//! decode there and is skipped (logged) on that node alone.
//!
//! ON_DEMAND streams scale on the metadata leader (`on_demand::scale`), from the writes every
//! node applies. Consumer groups and queues are a log of their own (`ops/delivery.rs`, the
//! delivery group); unfinished: delivery streams (Firehose) are refused in cluster mode
//! (`refuse_unreplicated`). A follower forwards every command to the metadata leader
//! (`forward`); a forwarded one that reaches a follower is refused, naming the leader.

use crate::control::members::MemberAddresses;
use crate::control::{self, Rules};
use crate::kinesis::shard_iterator::{IteratorKey, ITERATOR_KEY_BYTES};
use crate::limits::{CATALOG_CONFIRM_WAIT_MS, LEADER_POLL_MS};
use crate::ops::catalog;
use crate::ops::cluster::applied::Applied;
use crate::ops::node::Node;
use serde::{Deserialize, Serialize};
use sluice_cluster::host::{AppendError, GroupHost};
use sluice_cluster::limits::APPEND_COMMIT_WAIT_MS;
use sluice_cluster::CommittedEntry;
use sluice_engine::catalog::{write_atomic, CapacityMode, Catalog, StreamEncryption};
use sluice_model::{
    BillingCommitmentInputStatus, Consumer, ConsumerName, CreateStreamInput, EnhancedMonitoringOutput, KinesisError,
    MetricsName, MinimumThroughputBillingCommitment, RecordDistributionStrategy, Resource, StreamMode, TagMap,
    WarmThroughput,
};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Applied commands' outcomes kept for the proposers waiting on them (as in `records`).
const APPLIED_OUTCOMES_KEPT_MAX: usize = 1024;

/// The operations that are metadata commands on a replicated node: a follower forwards them
/// to the catalog's leader (`forward::target`), and `check_operation` lets them run.
pub const COMMAND_OPERATIONS: &[&str] = &[
    "CreateStream",
    "DeleteStream",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "TagResource",
    "UntagResource",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "EnableEnhancedMonitoring",
    "DisableEnhancedMonitoring",
    "UpdateMaxRecordSize",
    "UpdateStreamRecordDistributionStrategy",
    "UpdateAccountSettings",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "StartStreamEncryption",
    "StopStreamEncryption",
];

/// Whether operation `name` is a metadata command on a replicated node.
pub fn is_command(name: &str) -> bool {
    COMMAND_OPERATIONS.contains(&name)
}

/// One catalog change, as proposed and as applied (JSON: the model's own serde shapes; the
/// variant's name in `command`). Variants are only ever appended or added: a committed
/// command must decode with every later build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command")]
pub enum MetaCommand {
    CreateStream {
        now_ms: i64,
        input: CreateStreamInput,
    },
    DeleteStream {
        name: String,
        enforce_consumer_deletion: bool,
    },
    AddTagsToStream {
        name: String,
        tags: TagMap,
    },
    RemoveTagsFromStream {
        name: String,
        keys: Vec<String>,
    },
    /// TagResource of a stream or a consumer (a queue's tags are not replicated).
    TagResource {
        resource: ResourceName,
        tags: TagMap,
    },
    UntagResource {
        resource: ResourceName,
        keys: Vec<String>,
    },
    /// Increase- (`increase`) or DecreaseStreamRetentionPeriod.
    SetRetention {
        name: String,
        hours: i32,
        increase: bool,
    },
    /// RegisterStreamConsumer, registered at the proposer's `now_ms` (its ARN has the second).
    RegisterStreamConsumer {
        now_ms: i64,
        stream: String,
        consumer: String,
        tags: Option<TagMap>,
    },
    /// DeregisterStreamConsumer of the consumer registered at `created_s` when its ARN named
    /// it, else of whichever has the name.
    DeregisterStreamConsumer {
        stream: String,
        consumer: String,
        created_s: Option<i64>,
    },
    /// PutResourcePolicy (`Some`, parsed by the proposer) and DeleteResourcePolicy (`None`).
    SetResourcePolicy {
        resource: ResourceName,
        policy: Option<String>,
    },
    /// Enable- (`enable`) or DisableEnhancedMonitoring.
    SetEnhancedMonitoring {
        name: String,
        metrics: Vec<MetricsName>,
        enable: bool,
    },
    UpdateMaxRecordSize {
        name: String,
        kib: i32,
    },
    UpdateRecordDistribution {
        name: String,
        strategy: RecordDistributionStrategy,
    },
    /// UpdateAccountSettings at the proposer's `now_ms` (a commitment's window starts then).
    UpdateAccountSettings {
        now_ms: i64,
        status: BillingCommitmentInputStatus,
    },
    /// A reshard's first step (`ops/reshard.rs`): shard `number` closing, two children split
    /// at `key` (in capacity `mode`: the on-demand scaler splits ON_DEMAND streams).
    BeginSplit {
        now_ms: i64,
        stream: String,
        number: u32,
        #[serde(with = "decimal_u128")]
        key: u128,
        mode: CapacityMode,
    },
    BeginMerge {
        now_ms: i64,
        stream: String,
        first: u32,
        second: u32,
    },
    /// UpdateShardCount's first step: the stream UPDATING towards `target`.
    BeginScaling {
        now_ms: i64,
        stream: String,
        target: u32,
    },
    /// UpdateShardCount's next split or merge (or its end), once no shard is closing.
    NextScalingStep {
        now_ms: i64,
        stream: String,
    },
    /// A closing shard's end: the index its seal entry was applied at, on every replica.
    FinishClose {
        stream: String,
        number: u32,
        ending_index: u64,
    },
    /// Changes nothing: a new leader's first command, applied after everything committed
    /// before it (`reshard::finish_interrupted_while_leading`).
    Barrier,
    /// UpdateStreamMode at the proposer's time (the window of mode changes counts it).
    UpdateStreamMode {
        now_ms: i64,
        name: String,
        mode: StreamMode,
    },
    /// UpdateStreamWarmThroughput's first step, at the proposer's time (the account's
    /// commitment must be in force then): the target recorded, and the stream UPDATING towards
    /// the shards it needs, which the proposer's scaling then reaches (as UpdateShardCount's).
    BeginWarmThroughput {
        now_ms: i64,
        name: String,
        mibps: i32,
    },
    /// StartStreamEncryption at the proposer's time, with the master key the proposer resolved
    /// `KeyId` to and checked the caller may use (every member holds the same master keys:
    /// `docs/cluster.md`).
    StartStreamEncryption {
        now_ms: i64,
        name: String,
        encryption: StreamEncryption,
    },
    /// StopStreamEncryption at the proposer's time; `key_id` names the master key in any form
    /// (the proposer resolves it when it can).
    StopStreamEncryption {
        now_ms: i64,
        name: String,
        key_id: String,
    },
    /// ReplaceClusterMember (`membership`): member `old` leaves the cluster and `new`, at
    /// `member`'s addresses, takes its place in every group. `before` is the membership the
    /// proposer saw, which the catalog takes if it holds none yet (`--peers`' then).
    ReplaceMember {
        old: u64,
        new: u64,
        member: MemberAddresses,
        /// (A list of pairs: an internally tagged enum's map cannot have number keys in JSON.)
        before: Vec<(u64, MemberAddresses)>,
    },
    /// AddClusterMember: node `new`, at `member`'s addresses, joins every group as one more
    /// voter. `before` as for ReplaceMember.
    AddMember {
        new: u64,
        member: MemberAddresses,
        before: Vec<(u64, MemberAddresses)>,
    },
    /// RemoveClusterMember: member `old` leaves every group. `before` as for ReplaceMember.
    RemoveMember {
        old: u64,
        before: Vec<(u64, MemberAddresses)>,
    },
    /// The cluster's shard-iterator key (`Catalog::iterator_key`), which a leader proposes
    /// before its first command while the catalog has none ([`propose`]).
    SetIteratorKey {
        key: [u8; ITERATOR_KEY_BYTES],
    },
}

/// A hash key as a decimal string, as Kinesis writes one: serde's internally tagged enums
/// (the `command` tag) cannot carry a `u128` number.
mod decimal_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A stream or a consumer, as a resource ARN names it (the model's [`Resource`], resolved by
/// the proposer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ResourceName {
    Stream { name: String },
    Consumer { stream: String, consumer: String, created_s: i64 },
}

impl From<Resource> for ResourceName {
    fn from(resource: Resource) -> ResourceName {
        match resource {
            Resource::Stream(name) => ResourceName::Stream { name },
            Resource::Consumer(ConsumerName { stream, consumer, created_s }) => {
                ResourceName::Consumer { stream, consumer, created_s }
            }
        }
    }
}

impl From<ResourceName> for Resource {
    fn from(resource: ResourceName) -> Resource {
        match resource {
            ResourceName::Stream { name } => Resource::Stream(name),
            ResourceName::Consumer { stream, consumer, created_s } => {
                Resource::Consumer(ConsumerName { stream, consumer, created_s })
            }
        }
    }
}

/// What an applied command answers its proposer with, besides success.
#[derive(Debug)]
pub enum Reply {
    Done,
    Consumer(Consumer),
    Monitoring(EnhancedMonitoringOutput),
    Commitment(MinimumThroughputBillingCommitment),
    /// A reshard's step: the parents it closes (none: UpdateShardCount reached its target).
    Parents(Option<Vec<u32>>),
    /// BeginScaling: the open shards before.
    ShardCount(u32),
    /// BeginWarmThroughput: the warm throughput to answer.
    Warm(WarmThroughput),
}

impl Reply {
    /// The registered consumer, for RegisterStreamConsumer.
    pub fn into_consumer(self) -> Result<Consumer, KinesisError> {
        match self {
            Reply::Consumer(consumer) => Ok(consumer),
            other => Err(lost_outcome(&other)),
        }
    }

    pub fn into_monitoring(self) -> Result<EnhancedMonitoringOutput, KinesisError> {
        match self {
            Reply::Monitoring(output) => Ok(output),
            other => Err(lost_outcome(&other)),
        }
    }

    pub fn into_commitment(self) -> Result<MinimumThroughputBillingCommitment, KinesisError> {
        match self {
            Reply::Commitment(commitment) => Ok(commitment),
            other => Err(lost_outcome(&other)),
        }
    }

    pub fn into_parents(self) -> Result<Option<Vec<u32>>, KinesisError> {
        match self {
            Reply::Parents(parents) => Ok(parents),
            other => Err(lost_outcome(&other)),
        }
    }

    pub fn into_warm(self) -> Result<WarmThroughput, KinesisError> {
        match self {
            Reply::Warm(warm) => Ok(warm),
            other => Err(lost_outcome(&other)),
        }
    }

    pub fn into_shard_count(self) -> Result<u32, KinesisError> {
        match self {
            Reply::ShardCount(count) => Ok(count),
            other => Err(lost_outcome(&other)),
        }
    }
}

/// The change was applied but its answer is gone (more than [`APPLIED_OUTCOMES_KEPT_MAX`]
/// outcomes were waiting): the caller can describe what it changed.
fn lost_outcome(reply: &Reply) -> KinesisError {
    KinesisError::internal(format!(
        "the catalog change was applied but its answer was not kept ({reply:?}); describe the resource to see it"
    ))
}

type Outcome = Result<Reply, KinesisError>;

pub struct MetaGroup {
    host: GroupHost,
    applied: Applied<Outcome>,
    /// A membership change is being checked and proposed here ([`MetaGroup::change_members`]).
    changing_members: Rc<Cell<bool>>,
    /// Held while a committed command is applied and recorded, and while a catalog copied from
    /// a peer is installed ([`MetaGroup::installing`]): a command applied over a copy that
    /// already holds it would change the catalog twice, and record its index behind the
    /// copy's, after which the applier waits for an entry the log no longer has.
    applying: glommio::sync::Semaphore,
}

fn applied_path(node: &Node) -> PathBuf {
    node.shared.config.data_dir.join("raft").join("meta.applied")
}

/// Held while one membership change is checked and proposed; see [`MetaGroup::change_members`].
pub struct MemberChange(Rc<Cell<bool>>);

impl MemberChange {
    /// The guard of `flag`, unless another holds it.
    fn take(flag: &Rc<Cell<bool>>) -> Option<MemberChange> {
        (!flag.replace(true)).then(|| MemberChange(flag.clone()))
    }
}

impl Drop for MemberChange {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl MetaGroup {
    /// The right to check and propose one membership change on this node, until the guard is
    /// dropped; `None` while another call holds it. Without it two calls at the same instant
    /// could both find the groups settled before either command was applied.
    pub fn change_members(&self) -> Option<MemberChange> {
        MemberChange::take(&self.changing_members)
    }

    /// The member that leads the catalog as this node knows it (0: none known).
    pub fn leader(&self) -> u64 {
        self.host.leader()
    }

    pub fn host(&self) -> &GroupHost {
        &self.host
    }

    /// The index of the last catalog command applied here.
    pub fn applied_index(&self) -> u64 {
        self.applied.index()
    }

    /// The right to install a catalog copied from a peer, once no command is being applied:
    /// `membership::restorer` installs it only if it is past [`MetaGroup::applied_index`],
    /// read while the guard is held.
    pub async fn installing(&self) -> Result<glommio::sync::Permit<'_>, String> {
        self.applying.acquire_permit(1).await.map_err(|error| format!("the catalog's applier is closed: {error}"))
    }

    /// The catalog was copied from a peer up to command `index` (`membership::restorer`, which
    /// holds [`MetaGroup::installing`]): recorded as applied, and every core opens the groups
    /// of its shards.
    pub async fn restored_to(&self, core0: &Rc<Node>, index: u64) -> Result<(), String> {
        let path = applied_path(core0);
        let saved = glommio::executor().spawn_blocking(move || write_atomic(&path, &index.to_le_bytes())).await;
        saved.map_err(|error| format!("record the copied catalog applied: {error}"))?;
        self.applied.set(index, None);
        sync_groups(core0).await;
        crate::ops::leases::follow_streams(core0).await.map_err(|error| error.to_string())?;
        Ok(())
    }

    /// Starts the applier on core 0, from the last command applied before a restart.
    pub fn start(core0: &Rc<Node>, host: GroupHost) -> Rc<MetaGroup> {
        let applied = std::fs::read(applied_path(core0))
            .ok()
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        host.compactable(applied, bytes::Bytes::new());
        let group = Rc::new(MetaGroup {
            host,
            applied: Applied::new(applied, APPLIED_OUTCOMES_KEPT_MAX),
            changing_members: Rc::default(),
            applying: glommio::sync::Semaphore::new(1),
        });
        glommio::spawn_local(apply_committed(core0.clone(), group.clone())).detach();
        group
    }
}

async fn apply_committed(core0: Rc<Node>, group: Rc<MetaGroup>) {
    loop {
        let index = group.applied.index() + 1;
        group.host.committed_past(index - 1).await;
        let Some(CommittedEntry { data, .. }) = group.host.committed_entry(index).await else { continue };
        // Not held while waiting and fetching: a restore holds up the replica, which serves
        // the fetch.
        let Ok(_applying) = group.applying.acquire_permit(1).await else { return };
        if group.applied.index() + 1 != index {
            // A catalog copied from a peer (a snapshot) was installed meanwhile: go on after it.
            continue;
        }
        let outcome = if data.is_empty() {
            Ok(Reply::Done)
        } else {
            match serde_json::from_slice::<MetaCommand>(&data) {
                Ok(command) => apply(&core0, command).await,
                // The same bytes are committed everywhere: every node skips the command alike.
                Err(error) => {
                    tracing::error!(index, %error, "replication: a catalog command does not decode; skipped");
                    Err(KinesisError::internal(format!("the catalog command does not decode: {error}")))
                }
            }
        };
        let path = applied_path(&core0);
        let saved = glommio::executor().spawn_blocking(move || write_atomic(&path, &index.to_le_bytes())).await;
        if let Err(error) = saved {
            tracing::error!(index, %error, "replication: could not record the applied catalog command; it stops");
            return;
        }
        group.applied.set(index, Some(outcome));
        // The catalog holds it durably, and a restart resumes after it.
        group.host.compactable(index, bytes::Bytes::new());
    }
}

async fn apply(core0: &Rc<Node>, command: MetaCommand) -> Outcome {
    let applied = command.clone();
    let reply = catalog::apply(core0, move |catalog, _, rules| apply_to(catalog, rules, &applied)).await?;
    match command {
        // A new stream's shards get their groups in the background: a stream of hundreds of
        // shards takes seconds to start them all (500 shards: 4.7 s on three members of one
        // 2-core machine), and the proposer, waiting for this command to be applied, answered
        // InternalFailure after `APPEND_COMMIT_WAIT_MS` for a stream that was created, and held
        // up every catalog change after it. The stream shows CREATING until each of its shards
        // has a leader (`streams::described_status`), as on AWS. `sync_groups` starts what the
        // catalog has at the time it runs, so a later command that deletes the stream cannot
        // be undone by this one finishing after it.
        MetaCommand::CreateStream { .. } => {
            let core0 = core0.clone();
            glommio::spawn_local(async move { sync_groups(&core0).await }).detach();
        }
        // Reshards' children get their groups here too, and closing parents their sealers
        // (`sync_groups`): the reshard's next step waits for them.
        MetaCommand::BeginSplit { .. } | MetaCommand::BeginMerge { .. } | MetaCommand::NextScalingStep { .. } => {
            sync_groups(core0).await
        }
        MetaCommand::DeleteStream { .. } => {
            sync_groups(core0).await;
            crate::ops::leases::follow_streams(core0).await?
        }
        // The leader checked its own key store; a member without the key says so here.
        MetaCommand::StartStreamEncryption { name, .. } => {
            let streams = core0.shared.routes.load();
            let keys = core0.shared.config.security.keys.as_deref();
            let stream = streams.streams.get(&name).map(|stream| &stream.meta);
            crate::ops::sealing::warn_of_missing_master_keys(keys, stream, "StartStreamEncryption");
        }
        _ => {}
    }
    Ok(reply)
}

/// Applies `command` to `catalog`: a function of the two and of the rules every member is
/// given alike, with no clock of its own (a time comes in the command), so every node that
/// applies the same commands in the same order gets the same catalog and the same outcomes.
/// On an error the caller drops the edited copy (`catalog::apply`).
pub fn apply_to(catalog: &mut Catalog, rules: Rules<'_>, command: &MetaCommand) -> Outcome {
    use control::{consumers, members, reshard, settings, streams};
    let done = |()| Reply::Done;
    match command {
        MetaCommand::CreateStream { now_ms, input } => streams::create_stream(catalog, *now_ms, rules, input).map(done),
        MetaCommand::DeleteStream { name, enforce_consumer_deletion } => {
            streams::delete_stream(catalog, rules, name, *enforce_consumer_deletion).map(done)
        }
        MetaCommand::AddTagsToStream { name, tags } => streams::add_tags(catalog, rules, name, tags).map(done),
        MetaCommand::RemoveTagsFromStream { name, keys } => streams::remove_tags(catalog, rules, name, keys).map(done),
        MetaCommand::TagResource { resource, tags } => {
            consumers::tag_resource(catalog, rules, &resource.clone().into(), tags).map(done)
        }
        MetaCommand::UntagResource { resource, keys } => {
            consumers::untag_resource(catalog, rules, &resource.clone().into(), keys).map(done)
        }
        MetaCommand::SetRetention { name, hours, increase } => {
            streams::set_retention(catalog, rules, name, *hours, *increase).map(done)
        }
        MetaCommand::RegisterStreamConsumer { now_ms, stream, consumer, tags } => {
            consumers::register_consumer(catalog, *now_ms, rules, stream, consumer, tags.as_ref()).map(Reply::Consumer)
        }
        MetaCommand::DeregisterStreamConsumer { stream, consumer, created_s } => {
            consumers::deregister_named(catalog, rules, stream, consumer, *created_s).map(done)
        }
        MetaCommand::SetResourcePolicy { resource, policy } => {
            consumers::set_resource_policy(catalog, rules, &resource.clone().into(), policy.clone()).map(done)
        }
        MetaCommand::SetEnhancedMonitoring { name, metrics, enable } => {
            streams::set_enhanced_monitoring(catalog, rules, name, metrics, *enable).map(Reply::Monitoring)
        }
        MetaCommand::UpdateMaxRecordSize { name, kib } => {
            settings::update_max_record_size(catalog, rules, name, *kib).map(done)
        }
        MetaCommand::UpdateRecordDistribution { name, strategy } => {
            settings::update_distribution(catalog, rules, name, strategy).map(done)
        }
        MetaCommand::UpdateAccountSettings { now_ms, status } => {
            settings::update_account_settings(catalog, *now_ms, status).map(Reply::Commitment)
        }
        MetaCommand::BeginWarmThroughput { now_ms, name, mibps } => {
            settings::begin_warm_throughput(catalog, *now_ms, rules, name, *mibps).map(Reply::Warm)
        }
        MetaCommand::BeginSplit { now_ms, stream, number, key, mode } => {
            reshard::begin_split(catalog, *now_ms, rules, stream, *number, *key, *mode).map(|p| Reply::Parents(Some(p)))
        }
        MetaCommand::BeginMerge { now_ms, stream, first, second } => {
            reshard::begin_merge(catalog, *now_ms, rules, stream, *first, *second).map(|p| Reply::Parents(Some(p)))
        }
        MetaCommand::BeginScaling { now_ms, stream, target } => {
            reshard::begin_scaling(catalog, *now_ms, rules, stream, *target).map(Reply::ShardCount)
        }
        MetaCommand::NextScalingStep { now_ms, stream } => {
            reshard::next_scaling_step(catalog, *now_ms, rules, stream).map(Reply::Parents)
        }
        MetaCommand::FinishClose { stream, number, ending_index } => {
            reshard::finish_close(catalog, rules, stream, *number, *ending_index).map(done)
        }
        MetaCommand::Barrier => Ok(Reply::Done),
        MetaCommand::UpdateStreamMode { now_ms, name, mode } => {
            streams::update_stream_mode(catalog, *now_ms, rules, name, mode).map(done)
        }
        MetaCommand::StartStreamEncryption { now_ms, name, encryption } => {
            control::encryption::start(catalog, *now_ms, rules, name, encryption.clone()).map(done)
        }
        MetaCommand::StopStreamEncryption { now_ms, name, key_id } => {
            control::encryption::stop(catalog, *now_ms, rules, name, key_id).map(done)
        }
        MetaCommand::ReplaceMember { old, new, member, before } => {
            control::members::replace(catalog, *old, *new, member, before).map(done)
        }
        MetaCommand::AddMember { new, member, before } => {
            let change = members::Change { leaving: None, joining: Some((*new, member)) };
            members::change(catalog, change, before).map(done)
        }
        MetaCommand::RemoveMember { old, before } => {
            let change = members::Change { leaving: Some(*old), joining: None };
            members::change(catalog, change, before).map(done)
        }
        MetaCommand::SetIteratorKey { key } => {
            catalog.iterator_key.get_or_insert(*key);
            Ok(Reply::Done)
        }
    }
}

/// New shards get their groups on their cores, and deleted ones lose theirs (on every node:
/// each applies the command that created or deleted them).
async fn sync_groups(core0: &Rc<Node>) {
    for core in 0..core0.shared.config.cores {
        let synced = core0
            .run_on(core, |node| async move {
                crate::ops::cluster::sync_groups(&node).await.map_err(|error| error.to_string())
            })
            .await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(core, %error, "replication: could not start a new shard's group"),
            Err(error) => tracing::error!(core, %error, "replication: could not reach a core to sync its groups"),
        }
    }
}

/// One catalog change as a metadata command, from any core: proposed to the catalog's Raft
/// group on a replicated node (every member applies it in log order, and this one answers once
/// it has too), applied here by `catalog::change` on a node alone. Both apply the same function,
/// [`apply_to`], so a change has one meaning whether or not the node is replicated; this
/// is the one place that chooses between the two.
pub async fn edit(node: &Rc<Node>, command: MetaCommand) -> Result<Reply, KinesisError> {
    if node.shared.config.cluster.is_some() {
        propose(node, command).await
    } else {
        catalog::change(node, move |catalog, _, rules| apply_to(catalog, rules, &command)).await
    }
}

/// Proposes `command` to the metadata group (from any core) and answers once this node
/// applied it, with the outcome of its application here (the same on every node).
pub async fn propose(node: &Rc<Node>, command: MetaCommand) -> Outcome {
    node.run_on(0, move |core0| async move {
        let Some(core) = crate::ops::cluster::core() else {
            return Err(KinesisError::internal("replication is not running on this node"));
        };
        let Some(group) = core.meta() else {
            return Err(KinesisError::internal("the metadata group is not running on core 0"));
        };
        let append = |command: &MetaCommand| {
            let data = serde_json::to_vec(command).map_err(|error| KinesisError::internal(error.to_string()));
            let (core, group) = (&core, &group);
            async move {
                group.host.append(data?.into()).await.map_err(|error| match error {
                    // A forwarded request, or forwarding unavailable (see `forward`).
                    AppendError::NotLeader { leader } => core.not_leader("the catalog", leader),
                    other => KinesisError::internal(format!("Replication of the catalog: {other}; retry")),
                })
            }
        };
        // The cluster's iterator key comes first: every later command, a stream's creation
        // included, is applied after it, so no member hands out an iterator of its own key.
        let keyless = core0.catalog.as_ref().is_some_and(|owner| owner.catalog.borrow().iterator_key.is_none());
        if keyless && !matches!(command, MetaCommand::SetIteratorKey { .. }) {
            append(&MetaCommand::SetIteratorKey { key: *IteratorKey::generate().as_bytes() }).await?;
        }
        let appended = append(&command).await?;
        if !group.applied.wait(appended.index, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await {
            return Err(KinesisError::internal("the catalog change committed but was not applied in time; retry"));
        }
        group.applied.take(appended.index).unwrap_or(Ok(Reply::Done))
    })
    .await?
}

/// Waits until this node has applied every catalog command its leader had committed when the
/// call began (`GroupHost::read_index`, through the leader on a follower; asked again while
/// the group has no leader or changes it, for [`CATALOG_CONFIRM_WAIT_MS`] in all), then for
/// [`APPEND_COMMIT_WAIT_MS`] at most for the apply: a change answered before the call is then
/// seen here. Why not, if it could not wait.
pub async fn caught_up(node: &Rc<Node>) -> Result<(), String> {
    node.run_on(0, |_| async move {
        let group = crate::ops::cluster::core().and_then(|core| core.meta());
        let group = group.ok_or("the metadata group is not running on core 0")?;
        let deadline = std::time::Instant::now() + Duration::from_millis(CATALOG_CONFIRM_WAIT_MS);
        let commit = loop {
            match group.host.read_index().await {
                Ok(commit) => break commit,
                Err(error) if std::time::Instant::now() >= deadline => return Err(error.to_string()),
                // An election under way, a leader deposed while it was asked, a quorum out of
                // reach for a moment, or a full inbox: asked again once the leader table may
                // have moved.
                Err(_) => glommio::timer::sleep(Duration::from_millis(LEADER_POLL_MS)).await,
            }
        };
        if !group.applied.wait(commit, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await {
            return Err(format!("the catalog's commit {commit} was not applied here in time"));
        }
        Ok(())
    })
    .await
    .map_err(|error| error.message)?
}

/// In cluster mode, the catalog changes that are not replicated commands yet answer this.
pub fn refuse_unreplicated(operation: &str) -> KinesisError {
    KinesisError::internal(format!(
        "{operation} is not available on a replicated node yet: it is not one of the catalog changes a \
         cluster replicates (docs/replication.md lists them)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_change_is_checked_and_proposed_at_a_time() {
        let flag = Rc::default();
        let first = MemberChange::take(&flag).expect("free");
        assert!(MemberChange::take(&flag).is_none(), "held by the first call");
        drop(first);
        let again = MemberChange::take(&flag);
        assert!(again.is_some(), "released when the first call ended, however it ended");
    }

    /// Commands travel as JSON in the log; each must come back as it was proposed, and the
    /// two the first build wrote must keep their spelling.
    #[test]
    fn commands_round_trip_and_keep_their_spelling() {
        let consumer = ResourceName::Consumer { stream: "s".into(), consumer: "c".into(), created_s: 1_700_000_000 };
        let tags: TagMap = [("team".to_owned(), "data".to_owned())].into();
        let commands = [
            MetaCommand::DeleteStream { name: "s".into(), enforce_consumer_deletion: true },
            MetaCommand::AddTagsToStream { name: "s".into(), tags: tags.clone() },
            MetaCommand::TagResource { resource: consumer.clone(), tags },
            MetaCommand::UntagResource { resource: ResourceName::Stream { name: "s".into() }, keys: vec!["k".into()] },
            MetaCommand::SetRetention { name: "s".into(), hours: 48, increase: true },
            MetaCommand::RegisterStreamConsumer {
                now_ms: 1_700_000_000_123,
                stream: "s".into(),
                consumer: "c".into(),
                tags: None,
            },
            MetaCommand::DeregisterStreamConsumer { stream: "s".into(), consumer: "c".into(), created_s: Some(5) },
            MetaCommand::SetResourcePolicy { resource: consumer, policy: Some("{}".into()) },
            MetaCommand::SetEnhancedMonitoring { name: "s".into(), metrics: vec![MetricsName::All], enable: true },
            MetaCommand::UpdateMaxRecordSize { name: "s".into(), kib: 2048 },
            MetaCommand::UpdateRecordDistribution {
                name: "s".into(),
                strategy: RecordDistributionStrategy::UserPartitionKey,
            },
            MetaCommand::UpdateAccountSettings { now_ms: 7, status: BillingCommitmentInputStatus::Enabled },
            MetaCommand::BeginSplit {
                now_ms: 8,
                stream: "s".into(),
                number: 0,
                key: u128::MAX - 1,
                mode: CapacityMode::Provisioned,
            },
            MetaCommand::BeginMerge { now_ms: 9, stream: "s".into(), first: 1, second: 2 },
            MetaCommand::BeginScaling { now_ms: 10, stream: "s".into(), target: 4 },
            MetaCommand::NextScalingStep { now_ms: 11, stream: "s".into() },
            MetaCommand::FinishClose { stream: "s".into(), number: 3, ending_index: 1 << 40 },
            MetaCommand::Barrier,
            MetaCommand::UpdateStreamMode { now_ms: 12, name: "s".into(), mode: StreamMode::OnDemand },
            MetaCommand::BeginWarmThroughput { now_ms: 13, name: "s".into(), mibps: 40 },
            MetaCommand::StartStreamEncryption {
                now_ms: 14,
                name: "s".into(),
                encryption: StreamEncryption {
                    key_id: "alias/aws/kinesis".into(),
                    master_key_id: "3f0c3f4e-0000-4000-8000-000000000001".into(),
                },
            },
            MetaCommand::StopStreamEncryption { now_ms: 15, name: "s".into(), key_id: "alias/aws/kinesis".into() },
            replace_member(),
            add_member(),
            remove_member(),
            MetaCommand::SetIteratorKey { key: [7; ITERATOR_KEY_BYTES] },
        ];
        for command in commands {
            let bytes = serde_json::to_vec(&command).unwrap();
            assert_eq!(serde_json::from_slice::<MetaCommand>(&bytes).unwrap(), command);
        }
        let old = br#"{"command":"DeleteStream","name":"s","enforce_consumer_deletion":false}"#;
        let decoded = serde_json::from_slice::<MetaCommand>(old).unwrap();
        assert_eq!(decoded, MetaCommand::DeleteStream { name: "s".into(), enforce_consumer_deletion: false });
        for operation in COMMAND_OPERATIONS {
            let known = sluice_model::Operation::ALL.iter().any(|known| known.name() == *operation);
            assert!(known, "{operation} is not an operation");
        }
    }

    fn addresses(port: u16) -> MemberAddresses {
        MemberAddresses {
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            native: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port + 1))),
            http: None,
        }
    }

    fn founders() -> Vec<(u64, MemberAddresses)> {
        (1..=3).map(|id| (id, addresses(7000 + 100 * id as u16))).collect()
    }

    fn replace_member() -> MetaCommand {
        MetaCommand::ReplaceMember { old: 3, new: 4, member: addresses(7400), before: founders() }
    }

    /// The members once [`replace_member`] was applied, and then [`add_member`] if `added`.
    fn after_replacement(added: bool) -> Vec<(u64, MemberAddresses)> {
        let mut members = founders();
        members.retain(|(id, _)| *id != 3);
        members.push((4, addresses(7400)));
        if added {
            members.push((5, addresses(7500)));
        }
        members
    }

    fn add_member() -> MetaCommand {
        MetaCommand::AddMember { new: 5, member: addresses(7500), before: after_replacement(false) }
    }

    fn remove_member() -> MetaCommand {
        MetaCommand::RemoveMember { old: 1, before: after_replacement(true) }
    }

    /// The claim of the module docs: a crash between the catalog's write and
    /// `raft/meta.applied` applies the last command twice, and the second application changes
    /// nothing (it is refused, or sets the same values again).
    #[test]
    fn every_command_applied_twice_changes_the_catalog_once() {
        use crate::control::test_support::{rules, NOW_MS};
        let stream = || "s".to_string();
        let consumer_s = (NOW_MS + 1_500).div_euclid(1000);
        let consumer = ResourceName::Consumer { stream: stream(), consumer: "c".into(), created_s: consumer_s };
        let commands = [
            MetaCommand::CreateStream {
                now_ms: NOW_MS,
                input: CreateStreamInput { stream_name: stream(), shard_count: Some(2), ..Default::default() },
            },
            MetaCommand::AddTagsToStream {
                name: stream(),
                tags: [("a".into(), "1".into()), ("b".into(), "2".into())].into(),
            },
            MetaCommand::RemoveTagsFromStream { name: stream(), keys: vec!["b".into()] },
            MetaCommand::TagResource {
                resource: ResourceName::Stream { name: stream() },
                tags: [("c".into(), "3".into())].into(),
            },
            MetaCommand::SetRetention { name: stream(), hours: 48, increase: true },
            MetaCommand::SetRetention { name: stream(), hours: 36, increase: false },
            MetaCommand::RegisterStreamConsumer {
                now_ms: NOW_MS + 1_500,
                stream: stream(),
                consumer: "c".into(),
                tags: None,
            },
            MetaCommand::TagResource { resource: consumer.clone(), tags: [("d".into(), "4".into())].into() },
            MetaCommand::UntagResource { resource: consumer.clone(), keys: vec!["d".into()] },
            MetaCommand::SetResourcePolicy { resource: consumer, policy: Some("{}".into()) },
            MetaCommand::SetEnhancedMonitoring { name: stream(), metrics: vec![MetricsName::All], enable: true },
            MetaCommand::SetEnhancedMonitoring {
                name: stream(),
                metrics: vec![MetricsName::IncomingBytes],
                enable: false,
            },
            MetaCommand::UpdateMaxRecordSize { name: stream(), kib: 2048 },
            MetaCommand::UpdateRecordDistribution {
                name: stream(),
                strategy: RecordDistributionStrategy::UserPartitionKey,
            },
            MetaCommand::UpdateAccountSettings { now_ms: NOW_MS, status: BillingCommitmentInputStatus::Enabled },
            MetaCommand::UpdateAccountSettings {
                now_ms: NOW_MS + 60_000,
                status: BillingCommitmentInputStatus::Disabled,
            },
            MetaCommand::DeregisterStreamConsumer {
                stream: stream(),
                consumer: "c".into(),
                created_s: Some(consumer_s),
            },
            // A split of shard 0 (children 2 and 3), their merge (child 4), and an
            // UpdateShardCount's first step: each Begin applied twice is refused the second
            // time (one reshard at a time), a step twice is one step, an end twice the same.
            MetaCommand::BeginSplit {
                now_ms: NOW_MS,
                stream: stream(),
                number: 0,
                key: 1 << 100,
                mode: CapacityMode::Provisioned,
            },
            MetaCommand::FinishClose { stream: stream(), number: 0, ending_index: 5 },
            MetaCommand::BeginMerge { now_ms: NOW_MS, stream: stream(), first: 2, second: 3 },
            MetaCommand::FinishClose { stream: stream(), number: 2, ending_index: 0 },
            MetaCommand::FinishClose { stream: stream(), number: 3, ending_index: 7 },
            MetaCommand::BeginScaling { now_ms: NOW_MS, stream: stream(), target: 4 },
            MetaCommand::NextScalingStep { now_ms: NOW_MS, stream: stream() },
            MetaCommand::DeleteStream { name: stream(), enforce_consumer_deletion: false },
            replace_member(),
            add_member(),
            remove_member(),
            MetaCommand::SetIteratorKey { key: [1; ITERATOR_KEY_BYTES] },
        ];
        let mut catalog = Catalog::new(2);
        for command in &commands {
            // As `catalog::apply` does: the edited copy is kept only if the command succeeded.
            let mut edited = catalog.clone();
            apply_to(&mut edited, rules(), command).unwrap_or_else(|error| panic!("{command:?}: {error:?}"));
            // (USER_PARTITION_KEY is a new stream's distribution already.)
            if !matches!(command, MetaCommand::UpdateRecordDistribution { .. }) {
                assert_ne!(edited, catalog, "{command:?} changed nothing the first time");
            }
            catalog = edited;
            let mut again = catalog.clone();
            if apply_to(&mut again, rules(), command).is_ok() {
                assert_eq!(again, catalog, "{command:?} applied twice changed the catalog again");
            }
        }
        assert!(catalog.streams.is_empty());
        // A second leader's key, proposed before the first key reached its catalog, is not
        // taken: iterators signed with the first stay valid.
        apply_to(&mut catalog, rules(), &MetaCommand::SetIteratorKey { key: [2; ITERATOR_KEY_BYTES] }).unwrap();
        assert_eq!(catalog.iterator_key, Some([1; ITERATOR_KEY_BYTES]));
    }

    proptest::proptest! {
        /// A committed entry is decoded by every node; whatever its bytes (cut, flipped, or
        /// not a command at all), decoding answers a command or an error, never a panic.
        #[test]
        fn any_entry_decodes_or_is_refused(cut in 0usize..200, flip in 0usize..200, garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let command = MetaCommand::RegisterStreamConsumer {
                now_ms: 1_700_000_000_123,
                stream: "s".into(),
                consumer: "c".into(),
                tags: Some([("k".to_owned(), "v".to_owned())].into()),
            };
            let mut bytes = serde_json::to_vec(&command).unwrap();
            bytes.truncate(cut.min(bytes.len()));
            if let Some(byte) = bytes.get_mut(flip) {
                *byte ^= 0x20;
            }
            let _ = serde_json::from_slice::<MetaCommand>(&bytes);
            let _ = serde_json::from_slice::<MetaCommand>(&garbage);
        }
    }
}
