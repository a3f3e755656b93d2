//! The on-demand scaler's decision: which shards of an ON_DEMAND stream to split, given what
//! producers asked of each over a window. Pure, and tested with synthetic load and a fake
//! clock; the scaler that acts on it runs on core 0 (`ops/on_demand.rs`).
//!
//! Every shard's core counts the writes producers *asked* for (admitted or throttled), so a
//! shard pushed past its quota shows the demand, not just the quota. A shard is split once
//! its demand reached [`SPLIT_DEMAND_FRACTION`] of a shard's write quota, the hottest first,
//! until the stream has the most open shards an on-demand stream may have. Per-shard quotas
//! still apply: a single hot partition key cannot exceed one shard's quota, in Kinesis either.

use crate::limits::{SPLIT_DEMAND_FRACTION, WRITE_BYTES_PER_S, WRITE_RECORDS_PER_S};

/// What producers asked one shard to write during a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    pub bytes: u64,
    pub records: u64,
}

/// The shards to split, given each open shard's demand over a window of `window_ms`, for a
/// stream with `open_shards` that may grow to `shards_max`.
pub fn plan(open_shards: usize, shards_max: usize, demand: &[(u32, Demand)], window_ms: u64) -> Vec<u32> {
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
    hot.into_iter().take(shards_max.saturating_sub(open_shards)).map(|(_, shard)| shard).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::ON_DEMAND_SHARDS_MAX;

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
        assert_eq!(plan(5, ON_DEMAND_SHARDS_MAX, &demand, window), vec![4, 1, 0]);
    }

    #[test]
    fn a_burst_in_a_long_window_is_not_sustained_load() {
        // 5 MiB in one second of a 10 s window is 0.5 MiB/s on average.
        assert!(plan(4, ON_DEMAND_SHARDS_MAX, &[(0, Demand { bytes: 5 << 20, records: 5 })], 10_000).is_empty());
        // The same bytes in a 5 s window is 1 MiB/s: split.
        assert_eq!(plan(4, ON_DEMAND_SHARDS_MAX, &[(0, Demand { bytes: 5 << 20, records: 5 })], 5_000), vec![0]);
    }

    #[test]
    fn growth_stops_at_the_on_demand_ceiling() {
        let window = 1_000;
        let hot: Vec<_> = (0..10).map(|shard| (shard, load(window, 2 << 20, 10))).collect();
        assert_eq!(plan(ON_DEMAND_SHARDS_MAX - 3, ON_DEMAND_SHARDS_MAX, &hot, window).len(), 3);
        assert!(plan(ON_DEMAND_SHARDS_MAX, ON_DEMAND_SHARDS_MAX, &hot, window).is_empty());
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
            shards += plan(shards as usize, ON_DEMAND_SHARDS_MAX, &demand, window).len() as u32;
        }
        assert_eq!(over_quota_windows, 0, "capacity kept ahead of an even ramp");
        assert!(shards >= 38, "30 MiB/s needs at least 38 shards under 80% load, got {shards}");
    }
}
