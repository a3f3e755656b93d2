//! Resharding: SplitShard, MergeShards and UpdateShardCount, with Kinesis' rules.
//!
//! A reshard runs in three steps, each safe to crash after:
//! 1. On core 0, the catalog gains the children and marks the parents *closing*; it is
//!    persisted and published, so from then on new records route to the children.
//! 2. On each parent's core, the journal closes the parent: it refuses further appends and,
//!    once every append it accepted is durable, reports the parent's final record index.
//! 3. The catalog records that index; the stream returns to ACTIVE.
//!
//! A restart between steps finds parents still closing and finishes steps 2 and 3
//! ([`Core::finish_interrupted_reshards`]); an UpdateShardCount in progress resumes too.

use crate::arn::{self, resolve_stream};
use crate::error::{ErrorKind, ServiceError};
use crate::limits::{SHARDS_PER_STREAM_MAX, SHARD_LIMIT};
use crate::model::StreamRef;
use crate::node::Core;
use crate::service::parse_shard_id;
use sluice_engine::catalog::{
    self, uniform_scaling_step, CapacityMode, Catalog, CatalogError, ScalingStep, StreamStatus,
};
use sluice_engine::routing::HashKey;
use std::rc::Rc;

type Result<T> = std::result::Result<T, ServiceError>;

/// UpdateShardCount calls allowed per stream per rolling 24 hours (Kinesis: 10).
pub const SCALINGS_PER_DAY_MAX: usize = 10;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateShardCountOutput {
    pub stream_name: String,
    pub stream_arn: String,
    pub current_shard_count: u32,
    pub target_shard_count: u32,
}

fn reshard_error(error: CatalogError) -> ServiceError {
    match error {
        CatalogError::ShardNotFound { .. } | CatalogError::StreamNotFound(_) => {
            ServiceError::not_found(error.to_string())
        }
        CatalogError::ShardNotOpen { .. } => ServiceError::in_use(error.to_string()),
        CatalogError::SplitKeyOutside { .. } | CatalogError::NotAdjacent { .. } => {
            ServiceError::invalid(error.to_string())
        }
        other => ServiceError::from(other),
    }
}

/// A stream that may be resharded now: it exists, is ACTIVE, and is provisioned (ON_DEMAND
/// streams are resharded by the scaler, `on_demand.rs`, only).
fn reshardable(catalog: &Catalog, name: &str) -> Result<()> {
    reshardable_as(catalog, name, CapacityMode::Provisioned)
}

fn reshardable_as(catalog: &Catalog, name: &str, mode: CapacityMode) -> Result<()> {
    let stream = catalog.streams.get(name).ok_or_else(|| ServiceError::stream_not_found(name))?;
    if stream.status != StreamStatus::Active {
        return Err(ServiceError::in_use(format!(
            "Stream {name} under account {} is not ACTIVE; another reshard is in progress",
            arn::account_id()
        )));
    }
    if stream.mode != mode {
        return Err(ServiceError::new(
            ErrorKind::Validation,
            format!("Stream {name} is ON_DEMAND: Sluice reshards it by itself"),
        ));
    }
    Ok(())
}

fn open_shards(catalog: &Catalog) -> u32 {
    catalog.streams.values().flat_map(|s| &s.shards).filter(|s| s.is_open()).count() as u32
}

impl Core {
    /// The on-demand scaler's split: like SplitShard, but for an ON_DEMAND stream.
    pub async fn split_for_capacity(self: &Rc<Self>, name: &str, number: u32, key: u128) -> Result<()> {
        self.split(name, number, key, CapacityMode::OnDemand).await
    }

    pub async fn split_shard(
        self: &Rc<Self>,
        stream: StreamRef,
        shard_to_split: String,
        new_starting_hash_key: String,
    ) -> Result<()> {
        let name = resolve_stream(&stream)?;
        let number = parse_shard_id(&shard_to_split).ok_or_else(|| {
            ServiceError::not_found(format!("Shard {shard_to_split} in stream {name} does not exist"))
        })?;
        let key = HashKey::parse_decimal(&new_starting_hash_key).map_err(|_| {
            ServiceError::invalid(format!("NewStartingHashKey {new_starting_hash_key} is not a hash key"))
        })?;
        self.split(&name, number, key.0, CapacityMode::Provisioned).await
    }

    /// Splits shard `number` of a stream in capacity `mode` at `key`: all three steps.
    async fn split(self: &Rc<Self>, name: &str, number: u32, key: u128, mode: CapacityMode) -> Result<()> {
        let stream_name = name.to_string();
        self.control(move |catalog, now_ms| {
            reshardable_as(catalog, &stream_name, mode)?;
            if open_shards(catalog) + 1 > SHARD_LIMIT {
                return Err(ServiceError::limit(format!(
                    "This split would exceed the account's shard limit of {SHARD_LIMIT}"
                )));
            }
            catalog.split_shard(&stream_name, number, key, now_ms).map_err(reshard_error)
        })
        .await?;
        self.close_shards(name, &[number]).await
    }

    pub async fn merge_shards(
        self: &Rc<Self>,
        stream: StreamRef,
        shard_to_merge: String,
        adjacent_shard_to_merge: String,
    ) -> Result<()> {
        let name = resolve_stream(&stream)?;
        let not_found = |id: &str| ServiceError::not_found(format!("Shard {id} in stream {name} does not exist"));
        let first = parse_shard_id(&shard_to_merge).ok_or_else(|| not_found(&shard_to_merge))?;
        let second = parse_shard_id(&adjacent_shard_to_merge).ok_or_else(|| not_found(&adjacent_shard_to_merge))?;
        let stream_name = name.clone();
        self.control(move |catalog, now_ms| {
            reshardable(catalog, &stream_name)?;
            catalog.merge_shards(&stream_name, first, second, now_ms).map_err(reshard_error)
        })
        .await?;
        self.close_shards(&name, &[first, second]).await
    }

    /// Starts scaling to `target_shard_count` open shards of equal ranges and returns at once,
    /// as Kinesis does; the stream is UPDATING until the target is reached.
    pub async fn update_shard_count(
        self: &Rc<Self>,
        stream: StreamRef,
        target: u32,
        scaling_type: &str,
    ) -> Result<UpdateShardCountOutput> {
        if scaling_type != "UNIFORM_SCALING" {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{scaling_type}' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]"
            )));
        }
        if target == 0 {
            return Err(ServiceError::validation("TargetShardCount must be at least 1"));
        }
        let name = resolve_stream(&stream)?;
        let stream_name = name.clone();
        let current = self
            .control(move |catalog, now_ms| {
                reshardable(catalog, &stream_name)?;
                let open = open_shards(catalog);
                let stream = catalog.streams.get_mut(&stream_name).expect("checked");
                let current = stream.shards.iter().filter(|s| s.is_open()).count() as u32;
                let limit = |message: String| Err(ServiceError::limit(message));
                if target > current.saturating_mul(2) || target.saturating_mul(2) < current {
                    return limit(format!(
                        "UpdateShardCount can only scale between half and double the current {current} shards"
                    ));
                }
                if target > SHARDS_PER_STREAM_MAX || open - current + target > SHARD_LIMIT {
                    return limit(format!("Target {target} exceeds the shard limit"));
                }
                stream.scalings_ms.retain(|&at| now_ms - at < DAY_MS);
                if stream.scalings_ms.len() >= SCALINGS_PER_DAY_MAX {
                    return limit(format!(
                        "UpdateShardCount allows {SCALINGS_PER_DAY_MAX} scalings per rolling 24 hours"
                    ));
                }
                stream.scalings_ms.push(now_ms);
                stream.scaling_target = Some(target);
                stream.status = StreamStatus::Updating;
                Ok(current)
            })
            .await?;
        let this = self.clone();
        let scaled = name.clone();
        glommio::spawn_local(async move {
            if let Err(error) = this.continue_scaling(&scaled).await {
                tracing::error!(stream = %scaled, %error, "UpdateShardCount failed; a restart resumes it");
            }
        })
        .detach();
        Ok(UpdateShardCountOutput {
            stream_arn: arn::stream_arn(&name),
            stream_name: name,
            current_shard_count: current,
            target_shard_count: target,
        })
    }

    /// Takes the next uniform-scaling steps until the stream's open shards are its target.
    async fn continue_scaling(self: &Rc<Self>, name: &str) -> Result<()> {
        loop {
            let stream_name = name.to_string();
            let step = self
                .control(move |catalog, now_ms| {
                    let stream = catalog
                        .streams
                        .get_mut(&stream_name)
                        .ok_or_else(|| ServiceError::stream_not_found(&stream_name))?;
                    let Some(target) = stream.scaling_target else { return Ok(None) };
                    match uniform_scaling_step(stream, target) {
                        Some(ScalingStep::Split { shard, new_starting_hash_key }) => {
                            catalog
                                .split_shard(&stream_name, shard, new_starting_hash_key, now_ms)
                                .map_err(reshard_error)?;
                            Ok(Some(vec![shard]))
                        }
                        Some(ScalingStep::Merge { shard, adjacent }) => {
                            catalog.merge_shards(&stream_name, shard, adjacent, now_ms).map_err(reshard_error)?;
                            Ok(Some(vec![shard, adjacent]))
                        }
                        None => {
                            stream.scaling_target = None;
                            if !stream.shards.iter().any(|s| s.closing) {
                                stream.status = StreamStatus::Active;
                            }
                            Ok(None)
                        }
                    }
                })
                .await?;
            match step {
                Some(parents) => self.close_shards(name, &parents).await?,
                None => return Ok(()),
            }
        }
    }

    /// Steps 2 and 3 of a reshard for `numbers` of stream `name`.
    async fn close_shards(self: &Rc<Self>, name: &str, numbers: &[u32]) -> Result<()> {
        for &number in numbers {
            let route = self.routes().streams.get(name).and_then(|stream| stream.shard(number));
            let Some(shard) = route else { continue };
            let ending_index =
                self.run_on(shard.core, move |core| async move { core.journal.close_shard(shard.uid).await }).await??;
            let stream_name = name.to_string();
            self.control(move |catalog, _| {
                catalog.finish_close(&stream_name, number, ending_index).map_err(reshard_error)
            })
            .await?;
        }
        Ok(())
    }

    /// At start-up (on core 0, once every core serves): finishes reshards a crash interrupted.
    pub async fn finish_interrupted_reshards(self: &Rc<Self>) -> Result<()> {
        let catalog = self.catalog.as_ref().expect("core 0 holds the catalog").borrow().clone();
        for (name, stream) in &catalog.streams {
            let closing: Vec<u32> =
                stream.shards.iter().filter(|shard| shard.closing).map(|shard| shard.number).collect();
            if !closing.is_empty() {
                tracing::info!(stream = %name, shards = closing.len(), "finishing an interrupted reshard");
                self.close_shards(name, &closing).await?;
            }
            if stream.scaling_target.is_some() {
                tracing::info!(stream = %name, "resuming an interrupted UpdateShardCount");
                self.continue_scaling(name).await?;
            }
        }
        Ok(())
    }
}

/// Kinesis' `ChildShards` of a closed shard: the shards whose parent or adjacent parent it is.
pub fn child_shards(stream: &catalog::StreamMeta, number: u32) -> Vec<crate::model::ChildShard> {
    stream
        .shards
        .iter()
        .filter(|child| child.parent_shard_number == Some(number) || child.adjacent_parent_shard_number == Some(number))
        .map(|child| crate::model::ChildShard {
            shard_id: child.shard_id(),
            parent_shards: [child.parent_shard_number, child.adjacent_parent_shard_number]
                .into_iter()
                .flatten()
                .map(catalog::shard_id)
                .collect(),
            hash_key_range: crate::model::HashKeyRange {
                starting_hash_key: child.hash_key_start.to_string(),
                ending_hash_key: child.hash_key_end.to_string(),
            },
        })
        .collect()
}
