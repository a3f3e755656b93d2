//! A histogram of plain counters for one core: power-of-two buckets, no atomics, no locks.
//!
//! Each core records into its own (the hot path touches only core-local memory); a metrics
//! scrape copies each core's histogram (it is `Copy`) and merges them. The server turns the
//! merged buckets into Prometheus histograms (`server/src/metrics/`).

/// Buckets: value `v` falls in the first bucket `i` with `v <= 2^i`, so bucket 0 is `<= 1` and
/// bucket 31 is `<= 2^31`; larger values are only in the count and sum (the `+Inf` bucket).
/// 32 buckets cover 1 µs to 36 minutes for latencies and 1 to 2^31 for counts, and keep the
/// array `Default` (derived for arrays of at most 32).
pub const HISTOGRAM_BUCKETS: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Per bucket, the values that fell in it (not cumulative).
    pub buckets: [u64; HISTOGRAM_BUCKETS],
    pub count: u64,
    pub sum: u64,
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        // ceil(log2(value)): the smallest i with value <= 2^i.
        let bucket = if value <= 1 { 0 } else { (64 - (value - 1).leading_zeros()) as usize };
        if let Some(slot) = self.buckets.get_mut(bucket) {
            *slot += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Each bucket's upper bound and the values that fell in it, not cumulative (the
    /// Prometheus encoder sums them up), then the values above every bound under
    /// `u64::MAX`, the `+Inf` bucket's own.
    pub fn bucket_counts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let above = self.count - self.buckets.iter().sum::<u64>();
        let bounded = self.buckets.iter().enumerate().map(|(bucket, count)| (1u64 << bucket, *count));
        bounded.chain(std::iter::once((u64::MAX, above)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_first_bucket_at_or_above_them() {
        let mut histogram = Histogram::default();
        for value in [0, 1, 2, 3, 4, 5, 1 << 31, (1 << 31) + 1] {
            histogram.record(value);
        }
        assert_eq!(histogram.buckets[0], 2, "0 and 1");
        assert_eq!(histogram.buckets[1], 1, "2");
        assert_eq!(histogram.buckets[2], 2, "3 and 4");
        assert_eq!(histogram.buckets[3], 1, "5");
        assert_eq!(histogram.buckets[31], 1, "2^31");
        assert_eq!(histogram.count, 8, "2^31 + 1 is counted, in +Inf only");
        let counts: Vec<_> = histogram.bucket_counts().collect();
        assert_eq!(counts[2], (4, 2));
        assert_eq!(counts[31], (1 << 31, 1));
        assert_eq!(counts.last(), Some(&(u64::MAX, 1)), "2^31 + 1, above every bound");
        assert_eq!(counts.iter().map(|(_, count)| count).sum::<u64>(), histogram.count);
        let mut merged = histogram;
        merged.merge(&histogram);
        assert_eq!((merged.count, merged.buckets[0], merged.sum), (16, 4, 2 * histogram.sum));
    }
}
