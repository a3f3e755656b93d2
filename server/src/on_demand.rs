//! On-demand capacity: ON_DEMAND streams split their hot shards by themselves.
//!
//! Every shard's core counts the writes producers *asked* for (admitted or throttled), so a
//! shard pushed past its quota shows the demand, not just the quota. Every window, core 0
//! collects the counts of every ON_DEMAND stream and splits each shard whose demand reached
//! [`SPLIT_DEMAND_FRACTION`] of a shard's write quota, at the middle of its hash-key range,
//! until the stream has [`ON_DEMAND_SHARDS_MAX`] open shards. A new stream starts with 4
//! shards: 4 MiB/s and 4,000 records/s of write capacity. Per-shard quotas still apply: a
//! single hot partition key cannot exceed one shard's quota, in Kinesis either.
//!
//! [`plan`] is the whole decision, pure and tested with synthetic load and a fake clock.

use crate::node::Core;
use crate::throttle::{WRITE_BYTES_PER_S, WRITE_RECORDS_PER_S};
use sluice_engine::catalog::{CapacityMode, StreamStatus};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// A shard is split once its demand over a window reaches this fraction of its write quota:
/// early enough that the split lands before producers see sustained throttling.
pub const SPLIT_DEMAND_FRACTION: f64 = 0.8;
/// Most open shards an ON_DEMAND stream grows to: 200 MiB/s of writes at 1 MiB/s per shard
/// (Kinesis' on-demand ceiling in most regions).
pub const ON_DEMAND_SHARDS_MAX: usize = 200;
/// How long demand is measured before deciding. Long enough to ignore a burst.
pub const WINDOW_MS_DEFAULT: u64 = 10_000;

/// What producers asked one shard to write during a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    pub bytes: u64,
    pub records: u64,
}

/// The shards to split, given each open shard's demand over a window of `window_ms`.
pub fn plan(open_shards: usize, demand: &[(u32, Demand)], window_ms: u64) -> Vec<u32> {
    let seconds = window_ms as f64 / 1000.0;
    let mut hot: Vec<(f64, u32)> = demand
        .iter()
        .map(|(shard, demand)| {
            let bytes = demand.bytes as f64 / seconds / WRITE_BYTES_PER_S as f64;
            let records = demand.records as f64 / seconds / WRITE_RECORDS_PER_S as f64;
            (bytes.max(records), *shard)
        })
        .filter(|(load, _)| *load >= SPLIT_DEMAND_FRACTION)
        .collect();
    // The hottest first, within what the stream may still grow by.
    hot.sort_by(|a, b| b.0.total_cmp(&a.0));
    hot.into_iter().take(ON_DEMAND_SHARDS_MAX.saturating_sub(open_shards)).map(|(_, shard)| shard).collect()
}

impl Core {
    /// Counts a write producers asked for on `shard_uid` (this core owns it).
    pub fn note_demand(&self, shard_uid: u64, bytes: u64) {
        let mut demand = self.write_demand.borrow_mut();
        let entry = demand.entry(shard_uid).or_default();
        entry.bytes += bytes;
        entry.records += 1;
    }

    /// Core 0's scaler: every window, splits the hot shards of every ON_DEMAND stream.
    pub async fn scale_on_demand_streams(self: Rc<Self>, window_ms: u64) {
        loop {
            glommio::timer::sleep(Duration::from_millis(window_ms)).await;
            if self.shared.is_shutting_down() {
                return;
            }
            // Every core's counts, taken and reset at once.
            let mut demand: HashMap<u64, Demand> = HashMap::new();
            for core in 0..self.shared.config.cores {
                let taken =
                    self.run_on(core, |core| async move { std::mem::take(&mut *core.write_demand.borrow_mut()) }).await;
                for (uid, counted) in taken.into_iter().flatten() {
                    let entry = demand.entry(uid).or_default();
                    entry.bytes += counted.bytes;
                    entry.records += counted.records;
                }
            }
            for stream in self.routes().streams.values() {
                let meta = &stream.meta;
                if meta.mode != CapacityMode::OnDemand || meta.status != StreamStatus::Active {
                    continue;
                }
                let open: Vec<_> = meta.shards.iter().filter(|shard| shard.is_open()).collect();
                let load: Vec<(u32, Demand)> = open
                    .iter()
                    .map(|shard| (shard.number, demand.get(&shard.uid).copied().unwrap_or_default()))
                    .collect();
                for number in plan(open.len(), &load, window_ms) {
                    let shard = open.iter().find(|shard| shard.number == number).expect("planned from the open shards");
                    let middle = shard.hash_key_start + (shard.hash_key_end - shard.hash_key_start) / 2 + 1;
                    tracing::info!(stream = %meta.name, shard = %shard.shard_id(), "on-demand: splitting a hot shard");
                    if let Err(error) = self.split_for_capacity(&meta.name, number, middle).await {
                        tracing::warn!(stream = %meta.name, %error, "on-demand split failed");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Demand of `bytes_per_s` and `records_per_s` sustained over a window.
    fn load(window_ms: u64, bytes_per_s: u64, records_per_s: u64) -> Demand {
        Demand { bytes: bytes_per_s * window_ms / 1000, records: records_per_s * window_ms / 1000 }
    }

    #[test]
    fn hot_shards_split_and_cold_ones_stay() {
        let window = 10_000;
        let demand = [
            (0, load(window, 900_000, 100)),  // 86% of 1 MiB/s
            (1, load(window, 10_000, 950)),   // 95% of 1,000 records/s
            (2, load(window, 500_000, 500)),  // half: stays
            (3, Demand::default()),           // idle
            (4, load(window, 3 << 20, 3000)), // far over quota (throttled): hottest
        ];
        assert_eq!(plan(5, &demand, window), vec![4, 1, 0]);
    }

    #[test]
    fn a_burst_in_a_long_window_is_not_sustained_load() {
        // 5 MiB in one second of a 10 s window is 0.5 MiB/s on average.
        assert!(plan(4, &[(0, Demand { bytes: 5 << 20, records: 5 })], 10_000).is_empty());
        // The same bytes in a 5 s window is 1 MiB/s: split.
        assert_eq!(plan(4, &[(0, Demand { bytes: 5 << 20, records: 5 })], 5_000), vec![0]);
    }

    #[test]
    fn growth_stops_at_the_on_demand_ceiling() {
        let window = 1_000;
        let hot: Vec<_> = (0..10).map(|shard| (shard, load(window, 2 << 20, 10))).collect();
        assert_eq!(plan(ON_DEMAND_SHARDS_MAX - 3, &hot, window).len(), 3);
        assert!(plan(ON_DEMAND_SHARDS_MAX, &hot, window).is_empty());
    }

    #[test]
    fn a_ramp_over_simulated_minutes_doubles_capacity_as_it_is_needed() {
        // Synthetic load spread evenly over the open shards, ramping 1 MiB/s per window; the
        // scaler splits whenever per-shard demand reaches 80%, so no shard stays over quota
        // for more than one window.
        let window = 10_000;
        let mut shards: u32 = 4;
        let mut over_quota_windows = 0;
        for minute in 1..=30u64 {
            let total = minute << 20;
            let per_shard = total / u64::from(shards);
            if per_shard > WRITE_BYTES_PER_S {
                over_quota_windows += 1;
            }
            let demand: Vec<_> = (0..shards).map(|shard| (shard, load(window, per_shard, 10))).collect();
            shards += plan(shards as usize, &demand, window).len() as u32;
        }
        assert_eq!(over_quota_windows, 0, "capacity kept ahead of an even ramp");
        assert!(shards >= 38, "30 MiB/s needs at least 38 shards under 80% load, got {shards}");
    }
}
