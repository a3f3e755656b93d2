//! On-demand capacity, on core 0: every window, the scaler collects every core's write demand
//! and splits the hot shards of every ON_DEMAND stream (the decision is
//! `kinesis::demand::plan`), at the middle of their hash-key ranges.
//!
//! Replicated, every node counts the writes it applies (the same everywhere) and only the
//! metadata leader splits, through the metadata group (`reshard`). A node alone counts what
//! producers asked for, throttled writes included; a replicated node counts what was admitted,
//! so a shard held at its quota splits once that is over `SPLIT_DEMAND_FRACTION` of it, and the
//! hottest shards are told apart only up to their quota.

use crate::kinesis::demand::{plan, Demand};
use crate::ops::cluster::META_GROUP;
use crate::ops::node::Node;
use crate::ops::reshard::split_for_capacity;
use sluice_engine::catalog::{CapacityMode, StreamStatus};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Core 0's scaler: every `window_ms`, splits the hot shards of every ON_DEMAND stream.
pub async fn scale(core0: Rc<Node>, window_ms: u64) {
    loop {
        glommio::timer::sleep(Duration::from_millis(window_ms)).await;
        if core0.shared.shutdown.is_requested() {
            return;
        }
        // Every core's counts, taken and reset at once.
        let mut demand: HashMap<u64, Demand> = HashMap::new();
        for core in 0..core0.shared.config.cores {
            let taken = core0.run_on(core, |node| async move { node.shards.take_demand() }).await;
            for (uid, counted) in taken.into_iter().flatten() {
                let entry = demand.entry(uid).or_default();
                entry.bytes += counted.bytes;
                entry.records += counted.records;
            }
        }
        if let Some(cluster) = &core0.shared.config.cluster {
            if core0.shared.leaders.leader(META_GROUP.0) != Some(cluster.node_id) {
                continue;
            }
        }
        let shards_max = core0.limits().on_demand_shards_max;
        for stream in core0.routes().streams.values() {
            let meta = &stream.meta;
            if meta.mode != CapacityMode::OnDemand || meta.status != StreamStatus::Active {
                continue;
            }
            let open: Vec<_> = meta.shards.iter().filter(|shard| shard.is_open()).collect();
            let load: Vec<(u32, Demand)> =
                open.iter().map(|shard| (shard.number, demand.get(&shard.uid).copied().unwrap_or_default())).collect();
            for number in plan(open.len(), shards_max, &load, window_ms) {
                let shard = open.iter().find(|shard| shard.number == number).expect("planned from the open shards");
                let middle = shard.hash_key_start + (shard.hash_key_end - shard.hash_key_start) / 2 + 1;
                tracing::info!(stream = %meta.name, shard = %shard.shard_id(), "on-demand: splitting a hot shard");
                match split_for_capacity(&core0, &meta.name, number, middle).await {
                    Ok(()) => core0.metrics.on_demand_splits.set(core0.metrics.on_demand_splits.get() + 1),
                    Err(error) => {
                        tracing::warn!(stream = %meta.name, %error, "on-demand split failed");
                        break;
                    }
                }
            }
        }
    }
}
