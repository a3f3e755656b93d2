//! The catalog steps of a reshard: begin a split or a merge (children added, parents closing),
//! begin and step an UpdateShardCount, and record a closed parent's end. Core 0 drives them as
//! a state machine (`ops/reshard.rs`), fencing each parent on its own core in between.

use crate::control::{catalog_err, open_shards, stream_mut, Rules};
use crate::limits::LIMIT_WINDOW_MS;
use sluice_engine::catalog::{uniform_scaling_step, CapacityMode, Catalog, ScalingStep, StreamStatus};
use sluice_model::{ErrorKind, KinesisError};

type Result<T = ()> = std::result::Result<T, KinesisError>;

/// A stream that may be resharded now: it exists, is ACTIVE, and is in capacity mode `mode`
/// (an ON_DEMAND stream is resharded by the scaler only).
fn reshardable(catalog: &mut Catalog, rules: Rules<'_>, name: &str, mode: CapacityMode) -> Result {
    let stream = stream_mut(catalog, rules.identity, name)?;
    if stream.status != StreamStatus::Active {
        return Err(KinesisError::stream_not_active(rules.identity, name, "another reshard is in progress"));
    }
    if stream.mode != mode {
        return Err(KinesisError::new(
            ErrorKind::Validation,
            format!("Stream {name} is ON_DEMAND: Sluice reshards it by itself"),
        ));
    }
    Ok(())
}

/// SplitShard's first step: shard `number` of stream `name` (in capacity `mode`) starts
/// closing and two children take its range, split at `key`. Returns the parents to close.
pub fn begin_split(
    catalog: &mut Catalog,
    now_ms: i64,
    rules: Rules<'_>,
    name: &str,
    number: u32,
    key: u128,
    mode: CapacityMode,
) -> Result<Vec<u32>> {
    reshardable(catalog, rules, name, mode)?;
    let open = open_shards(catalog);
    if open + 1 > rules.limits.shard_limit {
        return Err(KinesisError::shard_limit_exceeded(rules.identity, open, rules.limits.shard_limit, 1));
    }
    catalog.split_shard(name, number, key, now_ms).map_err(catalog_err(rules.identity))?;
    Ok(vec![number])
}

/// MergeShards' first step: shards `first` and `second` start closing and one child takes
/// both ranges. Returns the parents to close.
pub fn begin_merge(
    catalog: &mut Catalog,
    now_ms: i64,
    rules: Rules<'_>,
    name: &str,
    first: u32,
    second: u32,
) -> Result<Vec<u32>> {
    reshardable(catalog, rules, name, CapacityMode::Provisioned)?;
    catalog.merge_shards(name, first, second, now_ms).map_err(catalog_err(rules.identity))?;
    Ok(vec![first, second])
}

/// UpdateShardCount's first step: checks the target and the quotas, and marks the stream
/// UPDATING towards `target`. Returns the open shard count before.
pub fn begin_scaling(catalog: &mut Catalog, now_ms: i64, rules: Rules<'_>, name: &str, target: u32) -> Result<u32> {
    let Rules { identity, limits } = rules;
    reshardable(catalog, rules, name, CapacityMode::Provisioned)?;
    let open = open_shards(catalog);
    let stream = stream_mut(catalog, identity, name)?;
    let current = stream.shards.iter().filter(|shard| shard.is_open()).count() as u32;
    if target > current.saturating_mul(2) || target.saturating_mul(2) < current {
        return Err(KinesisError::limit_exceeded(format!(
            "UpdateShardCount can only scale between half and double the current {current} shards"
        )));
    }
    if target > limits.shards_per_stream_max {
        return Err(KinesisError::limit_exceeded(format!(
            "A stream can have at most {} shards",
            limits.shards_per_stream_max
        )));
    }
    if open - current + target > limits.shard_limit {
        return Err(KinesisError::shard_limit_exceeded(
            identity,
            open,
            limits.shard_limit,
            target.saturating_sub(current),
        ));
    }
    stream.scalings_ms.retain(|&at| now_ms - at < LIMIT_WINDOW_MS);
    if stream.scalings_ms.len() >= limits.scalings_per_window_max {
        return Err(KinesisError::limit_exceeded(format!(
            "UpdateShardCount allows {} scalings per rolling 24 hours",
            limits.scalings_per_window_max
        )));
    }
    stream.scalings_ms.push(now_ms);
    stream.scaling_target = Some(target);
    stream.status = StreamStatus::Updating;
    Ok(current)
}

/// UpdateShardCount's next step: begins the next split or merge towards the stream's target
/// and returns the parents to close, or `None` once the target is reached (the stream is
/// ACTIVE again when no shard is closing). While a step's parents are still closing it
/// begins nothing and returns them: a step applied twice (a replicated command replayed
/// after a crash, or proposed by two metadata leaders in turn) is one step.
pub fn next_scaling_step(catalog: &mut Catalog, now_ms: i64, rules: Rules<'_>, name: &str) -> Result<Option<Vec<u32>>> {
    let stream = stream_mut(catalog, rules.identity, name)?;
    let Some(target) = stream.scaling_target else { return Ok(None) };
    let closing: Vec<u32> = stream.shards.iter().filter(|shard| shard.closing).map(|shard| shard.number).collect();
    if !closing.is_empty() {
        return Ok(Some(closing));
    }
    match uniform_scaling_step(stream, target) {
        Some(ScalingStep::Split { shard, new_starting_hash_key }) => {
            catalog.split_shard(name, shard, new_starting_hash_key, now_ms).map_err(catalog_err(rules.identity))?;
            Ok(Some(vec![shard]))
        }
        Some(ScalingStep::Merge { shard, adjacent }) => {
            catalog.merge_shards(name, shard, adjacent, now_ms).map_err(catalog_err(rules.identity))?;
            Ok(Some(vec![shard, adjacent]))
        }
        None => {
            stream.scaling_target = None;
            if !stream.shards.iter().any(|shard| shard.closing) {
                stream.status = StreamStatus::Active;
            }
            Ok(None)
        }
    }
}

/// The last step of closing shard `number`: its records end before `ending_index`.
pub fn finish_close(catalog: &mut Catalog, rules: Rules<'_>, name: &str, number: u32, ending_index: u64) -> Result {
    catalog.finish_close(name, number, ending_index).map_err(catalog_err(rules.identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_support::{rules, NOW_MS};

    #[test]
    fn a_split_closes_its_parent_and_then_records_its_end() {
        let mut catalog = Catalog::new(2);
        catalog.create_stream("s", 2, CapacityMode::Provisioned, NOW_MS).unwrap();
        let key = catalog.streams["s"].shards[0].hash_key_end / 2;
        assert_eq!(
            begin_split(&mut catalog, NOW_MS, rules(), "s", 0, key, CapacityMode::Provisioned).unwrap(),
            vec![0]
        );
        assert_eq!(catalog.streams["s"].shards.len(), 4);
        assert_eq!(catalog.streams["s"].status, StreamStatus::Updating);
        let busy = begin_split(&mut catalog, NOW_MS, rules(), "s", 1, key * 3, CapacityMode::Provisioned);
        assert_eq!(busy.unwrap_err().kind, ErrorKind::ResourceInUse, "one reshard at a time");
        finish_close(&mut catalog, rules(), "s", 0, 7).unwrap();
        assert_eq!(catalog.streams["s"].status, StreamStatus::Active);
        assert_eq!(catalog.streams["s"].shards[0].ending_index, Some(7));
        let on_demand = begin_split(&mut catalog, NOW_MS, rules(), "s", 1, key * 3, CapacityMode::OnDemand);
        assert_eq!(on_demand.unwrap_err().kind, ErrorKind::Validation);
    }

    #[test]
    fn scaling_steps_until_the_target_is_reached() {
        let mut catalog = Catalog::new(2);
        catalog.create_stream("s", 2, CapacityMode::Provisioned, NOW_MS).unwrap();
        assert_eq!(begin_scaling(&mut catalog, NOW_MS, rules(), "s", 5).unwrap_err().kind, ErrorKind::LimitExceeded);
        assert_eq!(begin_scaling(&mut catalog, NOW_MS, rules(), "s", 4).unwrap(), 2);
        let mut steps = 0;
        while let Some(parents) = next_scaling_step(&mut catalog, NOW_MS, rules(), "s").unwrap() {
            // Asked again before the parents closed: the same step, nothing begun.
            let before = catalog.clone();
            assert_eq!(next_scaling_step(&mut catalog, NOW_MS, rules(), "s").unwrap(), Some(parents.clone()));
            assert_eq!(catalog, before);
            for parent in parents {
                finish_close(&mut catalog, rules(), "s", parent, 0).unwrap();
            }
            steps += 1;
        }
        assert_eq!(steps, 2);
        let stream = &catalog.streams["s"];
        assert_eq!(stream.shards.iter().filter(|shard| shard.is_open()).count(), 4);
        assert_eq!(stream.status, StreamStatus::Active);
    }
}
