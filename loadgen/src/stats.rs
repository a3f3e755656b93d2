//! Latency histograms: recording, the percentile summary the JSON carries, and HdrHistogram's
//! `.hgrm` percentile-distribution text, which HdrHistogram's plotter and other tools read.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;

/// Latencies are recorded in microseconds, from 1 µs to an hour, to 3 significant digits
/// (0.1% resolution at every scale).
const LATENCY_US_MIN: u64 = 1;
const LATENCY_US_MAX: u64 = 3_600 * 1_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Percentile steps per halving of the distance to 100% in `.hgrm` output (HdrHistogram's
/// default).
const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        let histogram = Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
            .expect("the bounds are valid constants");
        Latency { histogram }
    }

    /// Records one latency in nanoseconds (saturating at an hour).
    pub fn record_ns(&mut self, latency_ns: u64) {
        self.histogram.saturating_record((latency_ns / 1_000).clamp(LATENCY_US_MIN, LATENCY_US_MAX));
    }

    pub fn add(&mut self, other: &Latency) {
        self.histogram.add(&other.histogram).expect("histograms of the same bounds add up");
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Milliseconds at quantile `q` (0..=1).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1_000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1_000.0
    }

    /// The summary of one kind of latency, as the JSON reports it.
    pub fn summary(&self, kind: &str) -> Summary {
        Summary {
            kind: kind.to_owned(),
            count: self.count(),
            p50_ms: self.quantile_ms(0.50),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            max_ms: self.max_ms(),
        }
    }

    /// The percentile curve as `(percentile 0..=1, milliseconds)` points, as `.hgrm` lists them.
    pub fn percentile_curve_ms(&self) -> Vec<(f64, f64)> {
        self.histogram
            .iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE)
            .map(|step| {
                let value = self.histogram.highest_equivalent(step.value_iterated_to());
                (step.quantile_iterated_to(), value as f64 / 1_000.0)
            })
            .collect()
    }

    /// HdrHistogram's percentile distribution text (`outputPercentileDistribution` with values
    /// in milliseconds).
    pub fn hgrm(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
        let mut total = 0u64;
        for step in self.histogram.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
            total += step.count_since_last_iteration();
            let value_ms = self.histogram.highest_equivalent(step.value_iterated_to()) as f64 / 1_000.0;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(out, "{value_ms:>12.3} {quantile:>2.12} {total:>10} {:>14.2}", 1.0 / (1.0 - quantile));
            } else {
                let _ = writeln!(out, "{value_ms:>12.3} {quantile:>2.12} {total:>10}");
            }
        }
        let h = &self.histogram;
        let _ =
            writeln!(out, "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]", h.mean() / 1_000.0, h.stdev() / 1_000.0);
        let _ = writeln!(out, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max() as f64 / 1_000.0, h.len());
        let _ = writeln!(out, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", h.buckets(), h.distinct_values());
        out
    }
}

/// One kind of latency in the JSON result: the names scripts read.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub kind: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_a_uniform_distribution() {
        let mut latency = Latency::new();
        for ms in 1..=1_000u64 {
            latency.record_ns(ms * 1_000_000);
        }
        let summary = latency.summary("polling");
        assert_eq!(summary.count, 1_000);
        // 3 significant digits: within 0.1%.
        assert!((summary.p50_ms - 500.0).abs() <= 0.5, "{summary:?}");
        assert!((summary.p99_ms - 990.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.p999_ms - 999.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.max_ms - 1_000.0).abs() <= 1.0, "{summary:?}");
    }

    #[test]
    fn hgrm_lists_increasing_percentiles_up_to_the_total() {
        let mut latency = Latency::new();
        for us in [10, 20, 30, 40, 5_000] {
            latency.record_ns(us * 1_000);
        }
        let text = latency.hgrm();
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| line.split_whitespace().take(3).map(|field| field.parse().unwrap()).collect())
            .collect();
        assert!(rows.len() >= 5, "{text}");
        assert!(rows.windows(2).all(|pair| pair[0][1] <= pair[1][1] && pair[0][0] <= pair[1][0]), "{text}");
        let last = rows.last().unwrap();
        assert_eq!((last[1], last[2]), (1.0, 5.0), "{text}");
        assert!((last[0] - 5.0).abs() < 0.01, "{text}");
        assert!(text.contains("Total count    =            5"), "{text}");
    }

    #[test]
    fn out_of_range_latencies_saturate_instead_of_failing() {
        let mut latency = Latency::new();
        latency.record_ns(0);
        latency.record_ns(u64::MAX);
        assert_eq!(latency.count(), 2);
        assert!(latency.max_ms() >= 3_600_000.0);
    }
}
