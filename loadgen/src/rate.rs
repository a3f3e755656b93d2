//! Steady-state rates and the verdicts on the per-shard limits.
//!
//! Every bucket in `sluiced` starts full with one second of quota (server/src/throttle.rs), so
//! the first second of an over-driven shard admits up to twice the quota. A rate measured from
//! the start would read high; the verdicts therefore use only what was admitted after a
//! warm-up. Within that window the rate is taken between the first and the last admission
//! (`steady_rate_per_s`), not over the window's fixed edges: admissions come in lumps (a
//! PutRecords call, a GetRecords response, an enhanced fan-out event of up to 2 MiB paced at
//! one a second), and a fixed edge that cuts a lump in two would make an exact limit read up
//! to one lump high or low.

use serde::Serialize;

/// How far a measured rate may be from its quota and still count as enforcing it: ±10%.
pub const TOLERANCE_FRACTION: f64 = 0.10;

/// What was admitted, and when: `(nanoseconds since the run's start, amount)`, in any order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    events: Vec<(u64, u64)>,
}

impl Series {
    pub fn push(&mut self, at_ns: u64, amount: u64) {
        if amount > 0 {
            self.events.push((at_ns, amount));
        }
    }

    pub fn total(&self) -> u64 {
        self.events.iter().map(|&(_, amount)| amount).sum()
    }

    /// The rate per second between the first and the last admission in `[from_ns, until_ns]`:
    /// the amount admitted after the first one, over the time from the first to the last.
    /// `None` with fewer than two admissions or no time between them.
    pub fn steady_rate_per_s(&self, from_ns: u64, until_ns: u64) -> Option<f64> {
        let mut window: Vec<(u64, u64)> =
            self.events.iter().copied().filter(|&(at_ns, _)| (from_ns..=until_ns).contains(&at_ns)).collect();
        window.sort_unstable();
        let (&(first_ns, _), rest) = window.split_first()?;
        let last_ns = rest.last()?.0;
        if last_ns <= first_ns {
            return None;
        }
        let amount: u64 = rest.iter().map(|&(_, amount)| amount).sum();
        Some(amount as f64 * 1e9 / (last_ns - first_ns) as f64)
    }
}

/// The per-shard limits, named as scripts read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// PutRecord(s): 1 MiB/s of data plus partition keys per shard.
    WriteBytesPerS,
    /// PutRecord(s): 1,000 records/s per shard.
    WriteRecordsPerS,
    /// GetRecords: 2 MiB/s per shard, shared by every polling consumer.
    ReadBytesPerS,
    /// GetRecords: 5 calls/s per shard, shared by every polling consumer.
    ReadCallsPerS,
    /// SubscribeToShard: 2 MiB/s per consumer per shard, whatever the other consumers do.
    EfoBytesPerS,
}

impl Limit {
    /// The Kinesis quota, per second (server/src/throttle.rs has the same constants).
    pub fn quota(self) -> f64 {
        match self {
            Limit::WriteBytesPerS => (1u64 << 20) as f64,
            Limit::WriteRecordsPerS => 1_000.0,
            Limit::ReadBytesPerS | Limit::EfoBytesPerS => (2u64 << 20) as f64,
            Limit::ReadCallsPerS => 5.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Limit::WriteBytesPerS => "write_bytes_per_s",
            Limit::WriteRecordsPerS => "write_records_per_s",
            Limit::ReadBytesPerS => "read_bytes_per_s",
            Limit::ReadCallsPerS => "read_calls_per_s",
            Limit::EfoBytesPerS => "efo_bytes_per_s",
        }
    }

    /// Whether going over this limit is refused with ProvisionedThroughputExceeded. Enhanced
    /// fan-out is paced instead: the server delays pushes, and nothing is refused.
    pub fn refuses(self) -> bool {
        self != Limit::EfoBytesPerS
    }
}

/// One limit on one shard (and, for enhanced fan-out, one consumer).
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub limit: Limit,
    pub stream: String,
    pub shard_id: String,
    /// The enhanced fan-out consumer, for `efo_bytes_per_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    pub quota: f64,
    /// The steady-state rate; 0 if too little was admitted to tell.
    pub measured: f64,
    /// `measured / quota`.
    pub ratio: f64,
    /// `measured` is within ±10% of `quota`.
    pub within: bool,
    /// What the load generator asked for, per second, in the same unit.
    pub offered: f64,
    /// Requests (GetRecords) or records (PutRecords) refused with
    /// ProvisionedThroughputExceeded.
    pub throttled: u64,
    /// Refusals with any other error: there should be none.
    pub other_errors: u64,
    /// Over-driving was answered the Kinesis way: for refusing limits, some refusals and all
    /// of them ProvisionedThroughputExceeded; for enhanced fan-out, no errors at all.
    pub throttles_ok: bool,
    /// `within && throttles_ok`.
    pub pass: bool,
}

/// What the load generator saw of one limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    /// The steady-state rate, if enough was admitted to tell.
    pub measured: Option<f64>,
    /// What was asked for, per second.
    pub offered: f64,
    pub throttled: u64,
    pub other_errors: u64,
}

impl Verdict {
    pub fn new(limit: Limit, stream: &str, shard_id: &str, consumer: Option<String>, observed: Observed) -> Verdict {
        let Observed { measured, offered, throttled, other_errors } = observed;
        let quota = limit.quota();
        let measured = measured.unwrap_or(0.0);
        let ratio = measured / quota;
        let within = (ratio - 1.0).abs() <= TOLERANCE_FRACTION;
        let throttles_ok = other_errors == 0 && (!limit.refuses() || throttled > 0);
        Verdict {
            limit,
            stream: stream.to_owned(),
            shard_id: shard_id.to_owned(),
            consumer,
            quota,
            measured,
            ratio,
            within,
            offered,
            throttled,
            other_errors,
            throttles_ok,
            pass: within && throttles_ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn series(events: &[(u64, u64)]) -> Series {
        let mut series = Series::default();
        for &(at_ns, amount) in events {
            series.push(at_ns, amount);
        }
        series
    }

    #[test]
    fn steady_rate_ignores_the_warm_up_burst_and_the_window_edges() {
        // Offered 200 every 100 ms against 1,000/s: the full bucket lets all 200 through for
        // the first second, then 100 per tick.
        let events: Vec<(u64, u64)> =
            (0..=100).map(|tick| (tick * S / 10, if tick < 10 { 200 } else { 100 })).collect();
        let series = series(&events);
        assert_eq!(series.total(), 200 * 10 + 100 * 91);
        let rate = series.steady_rate_per_s(2 * S, 10 * S).unwrap();
        assert!((rate - 1_000.0).abs() < 1e-6, "{rate}");
        // From the start, the burst makes it read high.
        assert!(series.steady_rate_per_s(0, 10 * S).unwrap() > 1_050.0);
    }

    #[test]
    fn lumpy_admissions_read_exactly_between_lumps() {
        // 2 MiB once a second (enhanced fan-out pacing), in arbitrary order.
        let lump = 2 << 20;
        let series = series(&[(3 * S, lump), (S, lump), (2 * S, lump), (4 * S, lump)]);
        assert_eq!(series.steady_rate_per_s(0, 10 * S), Some(lump as f64));
        // A window edge between lumps does not change it.
        assert_eq!(series.steady_rate_per_s(S + S / 2, 10 * S), Some(lump as f64));
    }

    #[test]
    fn too_little_to_tell() {
        assert_eq!(series(&[]).steady_rate_per_s(0, S), None);
        assert_eq!(series(&[(5, 10)]).steady_rate_per_s(0, S), None);
        assert_eq!(series(&[(5, 10), (5, 10)]).steady_rate_per_s(0, S), None);
        assert_eq!(series(&[(5, 0), (6, 0)]).steady_rate_per_s(0, S), None, "zero amounts are not admissions");
    }

    #[test]
    fn verdicts_need_the_rate_within_tolerance_and_throttles_as_pte() {
        let check = |limit: Limit, measured, throttled, other| {
            let observed = Observed { measured, offered: 2.0 * limit.quota(), throttled, other_errors: other };
            let v = Verdict::new(limit, "s", "shardId-000000000000", None, observed);
            (v.within, v.throttles_ok, v.pass)
        };
        assert_eq!(check(Limit::WriteRecordsPerS, Some(1_000.0), 10, 0), (true, true, true));
        assert_eq!(check(Limit::WriteRecordsPerS, Some(1_099.0), 10, 0), (true, true, true));
        assert_eq!(check(Limit::WriteRecordsPerS, Some(1_101.0), 10, 0), (false, true, false));
        assert_eq!(check(Limit::WriteRecordsPerS, Some(899.0), 10, 0), (false, true, false));
        assert_eq!(check(Limit::WriteRecordsPerS, None, 10, 0), (false, true, false));
        // Over-driven but never refused: the limit was not shown.
        assert_eq!(check(Limit::ReadCallsPerS, Some(5.0), 0, 0), (true, false, false));
        assert_eq!(check(Limit::ReadCallsPerS, Some(5.0), 3, 1), (true, false, false));
        // Enhanced fan-out paces instead of refusing.
        assert_eq!(check(Limit::EfoBytesPerS, Some(2.0 * 1_048_576.0), 0, 0), (true, true, true));
        assert_eq!(check(Limit::EfoBytesPerS, Some(2.0 * 1_048_576.0), 0, 1), (true, false, false));
    }

    #[test]
    fn limit_names_are_the_ones_scripts_read() {
        for limit in [
            Limit::WriteBytesPerS,
            Limit::WriteRecordsPerS,
            Limit::ReadBytesPerS,
            Limit::ReadCallsPerS,
            Limit::EfoBytesPerS,
        ] {
            assert_eq!(serde_json::to_value(limit).unwrap(), serde_json::Value::from(limit.name()));
        }
    }
}
