//! SplitShard, MergeShards and UpdateShardCount: reshards, driven by core 0 (which owns the
//! catalog) as a state machine whose every step is safe to crash after:
//!
//! ```text
//!  Begin ──► catalog: children added, parents closing; persisted, every core ready for the
//!    │       children, routes published (new records now go to the children)
//!    ▼
//!  Close ──► per parent: its core's journal fences it (no more appends; the final index once
//!    │       every accepted append is durable), then the catalog records that index
//!    ▼
//!  Next  ──► UpdateShardCount only: the next split or merge towards the target (back to
//!    │       Close), or the end
//!    ▼
//!  Done      the stream is ACTIVE again once no shard is closing
//! ```
//!
//! A restart finds parents still closing and resumes at Close, and an UpdateShardCount in
//! progress at Next ([`finish_interrupted`]).
//!
//! Replicated (`--peers`), each catalog step (Begin, Next, the end Close records) is a
//! metadata command (`ops/cluster/meta.rs`: `BeginSplit`, `BeginMerge`, `BeginScaling`,
//! `NextScalingStep`, `FinishClose`), which every member applies to its catalog, starting the
//! children's groups as CreateStream's are. The driver runs on the metadata leader only (a
//! follower forwards SplitShard, MergeShards and UpdateShardCount there). Close cannot be each
//! node's journal fence: each would fence the parent at whatever it had applied, and entries
//! the parent's group committed before the routes moved may still be applied after. Instead the
//! member leading the parent's group (whichever it is; every member runs a sealer for the
//! closing parents it hosts: `cluster::sync_groups`) proposes a seal entry to that
//! group (`ops/cluster/entry.rs`); every replica closes the parent where it applies the seal,
//! the same record index everywhere, and refuses the records entries committed after it (their
//! proposer routes them again, to the children: `cluster::records`). The driver waits until
//! its own replica applied the seal and proposes `FinishClose` with that index. A new metadata
//! leader, once a command of its own is applied (`MetaCommand::Barrier`), finishes the reshards
//! the catalog has in progress ([`finish_interrupted_while_leading`]); every step applied twice (two leaders in turn, a replay) is one step.
//!
//! On-demand scaling on a replicated node: every node counts the writes it applies as its
//! shards' demand (the same on every node), and only the metadata leader's scaler splits, through
//! the commands above. UpdateStreamWarmThroughput is a command too (`BeginWarmThroughput`), whose
//! proposer, the metadata leader, drives the scaling it starts.

use crate::kinesis::errors::engine_error;
use crate::ops::cluster::meta::{self, MetaCommand};
use crate::ops::cluster::META_GROUP;
use crate::ops::node::Node;
use crate::ops::records::{shard_of, stream_route};
use sluice_cluster::limits::TICK_INTERVAL_MS;
use sluice_engine::catalog::CapacityMode;
use sluice_model::*;
use std::rc::Rc;
use std::time::Duration;

type Result<T> = std::result::Result<T, KinesisError>;

/// Where a reshard is.
enum Step {
    /// Start a split of `number` at `key` (in capacity `mode`).
    Split {
        stream: String,
        number: u32,
        key: u128,
        mode: CapacityMode,
    },
    /// Start a merge of `first` and `second`.
    Merge {
        stream: String,
        first: u32,
        second: u32,
    },
    /// Fence `parents` and record their ends; then `Next` if this is a scaling.
    Close {
        stream: String,
        parents: Vec<u32>,
        scaling: bool,
    },
    /// UpdateShardCount's next step towards the stream's target.
    Next {
        stream: String,
    },
    Done,
}

/// Drives a reshard from `step` to its end, on core 0 (of the metadata leader, replicated).
async fn drive(core0: &Rc<Node>, mut step: Step) -> Result<()> {
    loop {
        // Consumer-group leases follow each durable step: children after Begin, parents'
        // ends after Close.
        if !matches!(step, Step::Split { .. } | Step::Merge { .. }) {
            crate::ops::leases::follow_streams(core0).await?;
            crate::ops::queues::follow_streams(core0).await?;
        }
        step = match step {
            Step::Split { stream, number, key, mode } => {
                let command =
                    MetaCommand::BeginSplit { now_ms: core0.now_ms(), stream: stream.clone(), number, key, mode };
                let parents = meta::edit(core0, command).await?.into_parents()?.unwrap_or_default();
                Step::Close { stream, parents, scaling: false }
            }
            Step::Merge { stream, first, second } => {
                let command = MetaCommand::BeginMerge { now_ms: core0.now_ms(), stream: stream.clone(), first, second };
                let parents = meta::edit(core0, command).await?.into_parents()?.unwrap_or_default();
                Step::Close { stream, parents, scaling: false }
            }
            Step::Close { stream, parents, scaling } => {
                for number in parents {
                    close(core0, &stream, number).await?;
                }
                if scaling {
                    Step::Next { stream }
                } else {
                    Step::Done
                }
            }
            Step::Next { stream } => {
                let command = MetaCommand::NextScalingStep { now_ms: core0.now_ms(), stream: stream.clone() };
                match meta::edit(core0, command).await?.into_parents()? {
                    Some(parents) => Step::Close { stream, parents, scaling: true },
                    None => Step::Done,
                }
            }
            Step::Done => return Ok(()),
        }
    }
}

/// Fences shard `number` of `stream` and records where it ended: alone, its core's journal
/// fences it at what it accepted; replicated, its seal entry does, at one position of its log
/// on every member.
async fn close(core0: &Rc<Node>, stream: &str, number: u32) -> Result<()> {
    let route = core0.routes().streams.get(stream).and_then(|route| route.shard(number));
    let Some(shard) = route else { return Ok(()) };
    if shard.ending_index.is_some() {
        // Closed already (a resumed reshard, or another driver of a new leader's).
        return Ok(());
    }
    let ending_index = if core0.shared.config.cluster.is_some() {
        core0
            .run_on(shard.core, move |node| async move { crate::ops::cluster::sealed_end(&node, shard.uid).await })
            .await??
    } else {
        core0
            .run_on(
                shard.core,
                move |node| async move { node.journal.close_shard(shard.uid).await.map_err(engine_error) },
            )
            .await??
    };
    let command = MetaCommand::FinishClose { stream: stream.to_owned(), number, ending_index };
    meta::edit(core0, command).await?;
    core0.metrics.reshards.set(core0.metrics.reshards.get() + 1);
    Ok(())
}

/// Runs `step` on core 0 to its end and answers from there.
async fn on_core0(node: &Rc<Node>, step: Step) -> Result<()> {
    // `Step` is built here and moved: every field is `Send`.
    node.run_on(0, move |core0| async move { drive(&core0, step).await }).await?
}

/// The shard number of a `ShardToSplit`/`ShardToMerge`, or ResourceNotFound.
fn shard_number(node: &Node, name: Option<&str>, arn: Option<&StreamArn>, shard: &ShardId) -> Result<(String, u32)> {
    let route = stream_route(node, name, arn)?;
    Ok((route.meta.name.clone(), shard_of(node, &route, shard)?.number))
}

/// SplitShard: returns once the split is done.
pub async fn split(node: &Rc<Node>, input: SplitShardInput) -> Result<Empty> {
    let (stream, number) =
        shard_number(node, input.stream_name.as_deref(), input.stream_arn.as_ref(), &input.shard_to_split)?;
    let key = input.new_starting_hash_key.0;
    on_core0(node, Step::Split { stream, number, key, mode: CapacityMode::Provisioned }).await?;
    Ok(Empty {})
}

/// The on-demand scaler's split of a hot shard, on core 0: like SplitShard, for an ON_DEMAND
/// stream.
pub async fn split_for_capacity(core0: &Rc<Node>, stream: &str, number: u32, key: u128) -> Result<()> {
    drive(core0, Step::Split { stream: stream.to_owned(), number, key, mode: CapacityMode::OnDemand }).await
}

/// MergeShards: returns once the merge is done.
pub async fn merge(node: &Rc<Node>, input: MergeShardsInput) -> Result<Empty> {
    let (name, arn) = (input.stream_name.as_deref(), input.stream_arn.as_ref());
    let (stream, first) = shard_number(node, name, arn, &input.shard_to_merge)?;
    let (_, second) = shard_number(node, name, arn, &input.adjacent_shard_to_merge)?;
    on_core0(node, Step::Merge { stream, first, second }).await?;
    Ok(Empty {})
}

/// UpdateShardCount: starts scaling to `target` open shards of equal ranges and returns at
/// once, as Kinesis does; the stream is UPDATING until the target is reached.
pub async fn update_shard_count(node: &Rc<Node>, input: UpdateShardCountInput) -> Result<UpdateShardCountOutput> {
    let stream = node.identity().resolve_stream(input.stream_name.as_deref(), input.stream_arn.as_ref())?.to_owned();
    let target = u32::try_from(input.target_shard_count).unwrap_or(0);
    let name = stream.clone();
    let current = node
        .run_on(0, move |core0| async move {
            let command = MetaCommand::BeginScaling { now_ms: core0.now_ms(), stream: name.clone(), target };
            let current = meta::edit(&core0, command).await?.into_shard_count()?;
            let driver = core0.clone();
            glommio::spawn_local(async move {
                if let Err(error) = drive(&driver, Step::Next { stream: name.clone() }).await {
                    tracing::error!(stream = %name, %error, "UpdateShardCount failed; a restart resumes it");
                }
            })
            .detach();
            Ok::<_, KinesisError>(current)
        })
        .await??;
    Ok(UpdateShardCountOutput {
        stream_arn: Some(node.identity().stream_arn(&stream)),
        stream_name: Some(stream),
        current_shard_count: Some(current as i32),
        target_shard_count: Some(target as i32),
    })
}

/// On core 0: drives the scaling a catalog change started (UpdateStreamWarmThroughput's) to its
/// end in the background, as UpdateShardCount does; a restart resumes it.
pub fn spawn_scaling(core0: &Rc<Node>, stream: String) {
    let driver = core0.clone();
    glommio::spawn_local(async move {
        if let Err(error) = drive(&driver, Step::Next { stream: stream.clone() }).await {
            tracing::error!(%stream, %error, "scaling failed; a restart resumes it");
        }
    })
    .detach();
}

/// Replicated, reshards are driven by the metadata leader alone. Each time this node becomes
/// that leader, once it applied every command committed before, it finishes the reshards the
/// catalog has in progress (closing parents, an UpdateShardCount's target), as a node alone
/// does at start-up; again a second later while that fails and it still leads. Runs on core 0
/// for the executor's life, like the metadata group.
pub async fn finish_interrupted_while_leading(core0: Rc<Node>) {
    let node_id = core0.shared.config.cluster.as_ref().map_or(0, |cluster| cluster.node_id);
    let tick = Duration::from_millis(TICK_INTERVAL_MS);
    let mut resumed = false;
    loop {
        glommio::timer::sleep(tick).await;
        if core0.shared.leaders.leader(META_GROUP.0) != Some(node_id) {
            resumed = false;
            continue;
        }
        if resumed {
            continue;
        }
        resumed = true;
        // Once a command of this leader's own is applied, every command committed before it
        // is applied here too: the catalog shows every reshard begun.
        let resumed_all = match meta::propose(&core0, MetaCommand::Barrier).await {
            Ok(_) => finish_interrupted(&core0).await,
            Err(error) => Err(error),
        };
        if let Err(error) = resumed_all {
            tracing::warn!(%error, "replication: could not finish the reshards in progress; again");
            glommio::timer::sleep(Duration::from_secs(1)).await;
            resumed = false;
        }
    }
}

/// At start-up, on core 0 once every core serves: finishes the reshards a crash interrupted.
pub async fn finish_interrupted(core0: &Rc<Node>) -> Result<()> {
    let catalog = core0.catalog.as_ref().expect("core 0 holds the catalog").catalog.borrow().clone();
    for (name, stream) in &catalog.streams {
        let closing: Vec<u32> = stream.shards.iter().filter(|shard| shard.closing).map(|shard| shard.number).collect();
        if !closing.is_empty() {
            tracing::info!(stream = %name, shards = closing.len(), "finishing an interrupted reshard");
            drive(core0, Step::Close { stream: name.clone(), parents: closing, scaling: false }).await?;
        }
        if stream.scaling_target.is_some() {
            tracing::info!(stream = %name, "resuming an interrupted UpdateShardCount");
            drive(core0, Step::Next { stream: name.clone() }).await?;
        }
    }
    Ok(())
}
