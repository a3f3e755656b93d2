//! Changes to the catalog, on core 0, which owns it.
//!
//! [`change`] sends a change (a `control::` function) to core 0, which applies it to a copy of
//! the catalog; if the copy differs it is persisted, then every core is made ready for the
//! new shards, then the new routes are published, then every core lets go of what the change
//! removed. Changes are serialized by core 0's catalog lock.
//!
//! The order is the point: a core must serve a shard (journal registration, quotas) before any
//! request can be routed to it, and only the published routes route requests. Publishing
//! first, as Sluice once did, made PutRecords entries routed to a fresh child in the moment
//! before its core had adopted it fail with "shard moved; retry".

use crate::control::Rules;
use crate::ops::node::Node;
use crate::runtime::routes::{Routes, ShardRoute};
use sluice_engine::catalog::Catalog;
use sluice_model::KinesisError;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

/// Runs `edit` on the catalog on core 0 (from any core) and applies what it changed; see the
/// module docs. `edit` gets the catalog copy, the time, and the rules (identity, limits).
pub async fn change<T, F>(node: &Rc<Node>, edit: F) -> Result<T, KinesisError>
where
    F: FnOnce(&mut Catalog, i64, Rules<'_>) -> Result<T, KinesisError> + Send + 'static,
    T: Send + 'static,
{
    node.run_on(0, move |core0| async move { apply(&core0, edit).await }).await?
}

/// [`change`], on core 0.
pub async fn apply<T, F>(core0: &Rc<Node>, edit: F) -> Result<T, KinesisError>
where
    F: FnOnce(&mut Catalog, i64, Rules<'_>) -> Result<T, KinesisError>,
{
    let owner = core0.catalog.as_ref().expect("catalog changes run on core 0");
    let _permit = owner.lock.acquire_permit(1).await.map_err(|_| KinesisError::internal("the catalog is closed"))?;
    let mut next = owner.catalog.borrow().clone();
    let config = &core0.shared.config;
    let result = edit(&mut next, core0.now_ms(), Rules { identity: &config.identity, limits: &config.limits })?;
    if next == *owner.catalog.borrow() {
        return Ok(result);
    }
    let (dir, snapshot) = (config.data_dir.clone(), next.clone());
    glommio::executor()
        .spawn_blocking(move || snapshot.save(&dir))
        .await
        .map_err(|error| crate::kinesis::errors::catalog_error(&config.identity, error))?;
    *owner.catalog.borrow_mut() = next;
    let previous = core0.routes();
    let routes = Arc::new(Routes::updated(&previous, &owner.catalog.borrow()));
    let (before, after) = (previous.shards_by_core(), routes.shards_by_core());
    prepare_cores(core0, &before, &after).await?;
    core0.shared.routes.publish(routes);
    settle_cores(core0, &before, &after).await?;
    Ok(result)
}

/// Before the routes are published: every core serves every shard the new routes place on it.
async fn prepare_cores(
    core0: &Rc<Node>,
    before: &BTreeMap<usize, Vec<ShardRoute>>,
    after: &BTreeMap<usize, Vec<ShardRoute>>,
) -> Result<(), KinesisError> {
    for (&core, shards) in after {
        let known: HashSet<u64> = before.get(&core).into_iter().flatten().map(|shard| shard.uid).collect();
        let new: Vec<ShardRoute> = shards.iter().filter(|shard| !known.contains(&shard.uid)).copied().collect();
        if !new.is_empty() {
            core0.run_on(core, move |node| async move { node.adopt_shards(&new, false) }).await?;
        }
    }
    Ok(())
}

/// After the routes are published: every core takes the new settings of its shards (closing,
/// retention) and stops serving the shards it no longer has.
async fn settle_cores(
    core0: &Rc<Node>,
    before: &BTreeMap<usize, Vec<ShardRoute>>,
    after: &BTreeMap<usize, Vec<ShardRoute>>,
) -> Result<(), KinesisError> {
    for core in 0..core0.shared.config.cores {
        if before.get(&core) == after.get(&core) {
            continue;
        }
        let kept = after.get(&core).cloned().unwrap_or_default();
        let uids: HashSet<u64> = kept.iter().map(|shard| shard.uid).collect();
        let dropped: Vec<u64> =
            before.get(&core).into_iter().flatten().map(|shard| shard.uid).filter(|uid| !uids.contains(uid)).collect();
        // Only the shards whose route changed: adopting an unchanged one changes nothing, and
        // adopting every shard of the core made each change cost every shard (issue 19).
        let unchanged: HashSet<ShardRoute> = before.get(&core).into_iter().flatten().copied().collect();
        let changed: Vec<ShardRoute> = kept.into_iter().filter(|shard| !unchanged.contains(shard)).collect();
        core0
            .run_on(core, move |node| async move {
                node.drop_shards(&dropped);
                // Replicated, a parent is fenced by its seal entry, at one position of its
                // own log on every node (`cluster::records`), not when this node hears of it.
                node.adopt_shards(&changed, node.shared.config.cluster.is_none());
            })
            .await?;
    }
    Ok(())
}
