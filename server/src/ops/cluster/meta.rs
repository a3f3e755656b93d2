//! The metadata group: the catalog's changes as commands of Raft group 0 on core 0, applied
//! by every node to its catalog in log order, so every node has the same streams, shards,
//! shard uids and sequence-number prefixes.
//!
//! A command carries everything its change reads besides the catalog (the proposer's clock
//! for CreateStream, which becomes the shards' sequence-number epoch), so applying it is a
//! pure function of the catalog and the command (`control::streams`), the same on every node.
//! After a restart the replica reports its committed commands again from the first; the index
//! of the last one applied is kept in `raft/meta.applied`, written after the catalog, so at
//! most the last command is applied twice, which these commands survive (a second creation
//! or deletion of one stream is refused and changes nothing).
//!
//! Unfinished: only CreateStream and DeleteStream are commands; every other catalog change
//! (retention, tags, consumers, resharding, encryption, settings) is refused in cluster mode
//! (`refuse_unreplicated`). A follower forwards CreateStream and DeleteStream to the metadata
//! leader (`forward`); a forwarded one that reaches a follower is refused, naming the leader.

use crate::control;
use crate::ops::catalog;
use crate::ops::cluster::applied::Applied;
use crate::ops::node::Node;
use serde::{Deserialize, Serialize};
use sluice_cluster::host::{AppendError, GroupHost};
use sluice_cluster::limits::APPEND_COMMIT_WAIT_MS;
use sluice_engine::catalog::write_atomic;
use sluice_model::{CreateStreamInput, Empty, KinesisError, StreamMode};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// Applied commands' outcomes kept for the proposers waiting on them (as in `records`).
const APPLIED_OUTCOMES_KEPT_MAX: usize = 1024;

/// One catalog change, as proposed and as applied (JSON: the model's own serde shapes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command")]
pub enum MetaCommand {
    CreateStream { now_ms: i64, input: CreateStreamInput },
    DeleteStream { name: String, enforce_consumer_deletion: bool },
}

type Outcome = Result<(), KinesisError>;

pub struct MetaGroup {
    host: GroupHost,
    applied: Applied<Outcome>,
}

fn applied_path(node: &Node) -> PathBuf {
    node.shared.config.data_dir.join("raft").join("meta.applied")
}

impl MetaGroup {
    /// The member that leads the catalog as this node knows it (0: none known).
    pub fn leader(&self) -> u64 {
        self.host.leader()
    }

    /// Starts the applier on core 0, from the last command applied before a restart.
    pub fn start(core0: &Rc<Node>, host: GroupHost) -> Rc<MetaGroup> {
        let applied = std::fs::read(applied_path(core0))
            .ok()
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let group = Rc::new(MetaGroup { host, applied: Applied::new(applied, APPLIED_OUTCOMES_KEPT_MAX) });
        glommio::spawn_local(apply_committed(core0.clone(), group.clone())).detach();
        group
    }
}

async fn apply_committed(core0: Rc<Node>, group: Rc<MetaGroup>) {
    loop {
        let index = group.applied.index() + 1;
        group.host.committed_past(index - 1).await;
        let Some(data) = group.host.committed_entry(index) else { continue };
        let outcome = if data.is_empty() {
            Ok(())
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
    }
}

async fn apply(core0: &Rc<Node>, command: MetaCommand) -> Outcome {
    match command {
        MetaCommand::CreateStream { now_ms, input } => {
            catalog::apply(core0, move |catalog, _, rules| {
                control::streams::create_stream(catalog, now_ms, rules, &input)
            })
            .await?;
        }
        MetaCommand::DeleteStream { name, enforce_consumer_deletion } => {
            catalog::apply(core0, move |catalog, _, rules| {
                control::streams::delete_stream(catalog, rules, &name, enforce_consumer_deletion)
            })
            .await?;
            crate::ops::leases::follow_streams(core0).await?;
        }
    }
    // New shards get their groups on their cores (on every node: each applies this command).
    for core in 0..core0.shared.config.cores {
        let started = core0
            .run_on(core, |node| async move {
                crate::ops::cluster::start_missing_groups(&node).await.map_err(|error| error.to_string())
            })
            .await?;
        if let Err(error) = started {
            tracing::error!(core, %error, "replication: could not start a new shard's group");
        }
    }
    Ok(())
}

/// CreateStream on a replicated node: a command of the metadata group. ON_DEMAND streams are
/// refused: their scaler reshards on its own measurements, which differ per node.
pub async fn create_stream(node: &Rc<Node>, input: CreateStreamInput) -> Result<Empty, KinesisError> {
    let mode = input.stream_mode_details.as_ref().map(|details| &details.stream_mode);
    if mode == Some(&StreamMode::OnDemand) {
        // Unfinished: on-demand scaling (and resharding) as metadata commands.
        return Err(KinesisError::invalid_argument(
            "ON_DEMAND streams are not available on a replicated node yet (their resharding is not replicated); \
             create a PROVISIONED stream",
        ));
    }
    propose(node, MetaCommand::CreateStream { now_ms: node.now_ms(), input }).await?;
    Ok(Empty {})
}

/// DeleteStream on a replicated node: a command of the metadata group.
pub async fn delete_stream(
    node: &Rc<Node>,
    name: String,
    enforce_consumer_deletion: bool,
) -> Result<Empty, KinesisError> {
    propose(node, MetaCommand::DeleteStream { name, enforce_consumer_deletion }).await?;
    Ok(Empty {})
}

/// Proposes `command` to the metadata group (from any core) and answers once this node
/// applied it.
pub async fn propose(node: &Rc<Node>, command: MetaCommand) -> Outcome {
    node.run_on(0, move |_core0| async move {
        let Some(core) = crate::ops::cluster::core() else {
            return Err(KinesisError::internal("replication is not running on this node"));
        };
        let Some(group) = core.meta() else {
            return Err(KinesisError::internal("the metadata group is not running on core 0"));
        };
        let data = serde_json::to_vec(&command).map_err(|error| KinesisError::internal(error.to_string()))?;
        let appended = group.host.append(data.into()).await.map_err(|error| match error {
            // A forwarded request, or forwarding unavailable (see `forward`).
            AppendError::NotLeader { leader } => KinesisError::internal(match core.member_addresses(leader) {
                Some(addresses) => {
                    format!("This node does not lead the catalog: node {leader} ({addresses}) does; retry")
                }
                None => "The catalog has no leader right now (an election is under way); retry".to_string(),
            }),
            other => KinesisError::internal(format!("Replication of the catalog: {other}; retry")),
        })?;
        if !group.applied.wait(appended.index, Duration::from_millis(APPEND_COMMIT_WAIT_MS)).await {
            return Err(KinesisError::internal("the catalog change committed but was not applied in time; retry"));
        }
        group.applied.take(appended.index).unwrap_or(Ok(()))
    })
    .await?
}

/// In cluster mode, the catalog changes that are not replicated commands yet answer this.
pub fn refuse_unreplicated(operation: &str) -> KinesisError {
    KinesisError::internal(format!(
        "{operation} is not available on a replicated node yet: only CreateStream and DeleteStream \
         change the catalog of a cluster (docs/replication.md)"
    ))
}
