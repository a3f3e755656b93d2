//! The in-memory index of one shard: where each of its runs lies in the core's journal.
//!
//! One entry per run (the records a shard received in one group commit), so a shard that is
//! written in batches costs far less than one entry per record. Every lookup is a binary
//! search: by record index (sequence numbers), by arrival time (AT_TIMESTAMP), or the ends
//! (TRIM_HORIZON, LATEST).
//!
//! Unfinished (issue 19, "the run index kept bounded for long retention"): every retained run
//! stays in memory, 32 bytes each (`RunEntry`), so the index grows with commits × shards
//! written per commit, not with bytes: 10 GiB over 10,000 shards in 500-record calls was
//! 220,000 runs (7 MB, `bench/results/2026-12-02-scale/`), but a shard taking one record per
//! group commit at 1,000 commits/s for a year of retention would hold 3.2e10 runs. The plan:
//! keep only the active segment's runs in memory and, per sealed segment, one entry per shard
//! (first index, first and last arrival time), reading that segment's checkpoint (`.idx`, which
//! already lists its runs) when a read lands in it.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEntry {
    pub first_index: u64,
    pub record_count: u32,
    pub run_bytes: u32,
    /// Journal position of the run header.
    pub position: u64,
    pub timestamp_ms: i64,
}

impl RunEntry {
    pub fn end_index(&self) -> u64 {
        self.first_index + u64::from(self.record_count)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {shard_uid}: run starts at record {found}, expected {expected}")]
pub struct GapError {
    pub shard_uid: u64,
    pub expected: u64,
    pub found: u64,
}

/// Index of a shard's first record. Index 0 is never a record: its sequence number is the
/// shard's StartingSequenceNumber, which sorts before every record of the shard, so "after
/// the shard's start" (a subscription's continuation on an empty shard) is expressible.
pub const FIRST_RECORD_INDEX: u64 = 1;

#[derive(Debug, Clone)]
pub struct ShardIndex {
    runs: VecDeque<RunEntry>,
    /// Index the next appended record gets.
    next_index: u64,
    /// Arrival time of the newest record; later records never get an earlier one.
    last_timestamp_ms: i64,
}

impl Default for ShardIndex {
    fn default() -> ShardIndex {
        ShardIndex::starting_at(FIRST_RECORD_INDEX, i64::MIN)
    }
}

impl ShardIndex {
    /// An index that continues after records that are no longer indexed (expired, or known
    /// only from a watermark), so that their indexes are never handed out again.
    pub fn starting_at(next_index: u64, last_timestamp_ms: i64) -> ShardIndex {
        ShardIndex { runs: VecDeque::new(), next_index, last_timestamp_ms }
    }

    pub fn push(&mut self, shard_uid: u64, run: RunEntry) -> Result<(), GapError> {
        // Before any run is indexed the shard may start anywhere at or past the watermark:
        // earlier runs lived in segments retention has deleted.
        let contiguous =
            if self.runs.is_empty() { run.first_index >= self.next_index } else { run.first_index == self.next_index };
        if !contiguous {
            return Err(GapError { shard_uid, expected: self.next_index, found: run.first_index });
        }
        assert!(run.record_count > 0, "empty runs are never written");
        self.next_index = run.end_index();
        self.last_timestamp_ms = self.last_timestamp_ms.max(run.timestamp_ms);
        self.runs.push_back(run);
        Ok(())
    }

    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    pub fn last_timestamp_ms(&self) -> i64 {
        self.last_timestamp_ms
    }

    /// First retained record: the trim horizon.
    pub fn trim_index(&self) -> u64 {
        self.runs.front().map_or(self.next_index, |run| run.first_index)
    }

    /// Forgets runs that arrived before `cutoff_ms`. Returns how many records expired (runs
    /// are contiguous, so that is how far the trim horizon moved).
    pub fn expire_before(&mut self, cutoff_ms: i64) -> u64 {
        let trim_before = self.trim_index();
        let expired = self.runs.partition_point(|run| run.timestamp_ms < cutoff_ms);
        self.runs.drain(..expired);
        self.trim_index() - trim_before
    }

    /// Forgets the runs that end at or before `index` (whole runs only: a run that `index`
    /// cuts stays). Returns how many records left the index. The owner of a shard that trims
    /// its own log (the delivery state's internal shard) calls this through
    /// `Journal::trim_shard_before`.
    pub fn trim_before(&mut self, index: u64) -> u64 {
        let trim_before = self.trim_index();
        let trimmed = self.runs.partition_point(|run| run.end_index() <= index);
        self.runs.drain(..trimmed);
        self.trim_index() - trim_before
    }

    /// Index of the first record that arrived at or after `timestamp_ms`, or the tip.
    pub fn index_at_timestamp(&self, timestamp_ms: i64) -> u64 {
        let run = self.runs.partition_point(|run| run.timestamp_ms < timestamp_ms);
        self.runs.get(run).map_or(self.next_index, |run| run.first_index)
    }

    /// The runs holding records from `index` on, oldest first.
    pub fn runs_from(&self, index: u64) -> impl Iterator<Item = &RunEntry> {
        let first = self.runs.partition_point(|run| run.end_index() <= index);
        self.runs.range(first..)
    }

    /// Arrival time of the record at `index`, if it is retained.
    pub fn timestamp_of(&self, index: u64) -> Option<i64> {
        self.runs_from(index).next().filter(|run| run.first_index <= index).map(|run| run.timestamp_ms)
    }

    pub fn run_count(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first_index: u64, record_count: u32, timestamp_ms: i64) -> RunEntry {
        RunEntry { first_index, record_count, run_bytes: 100, position: first_index * 1000, timestamp_ms }
    }

    fn index(runs: &[RunEntry]) -> ShardIndex {
        let mut index = ShardIndex::starting_at(0, i64::MIN);
        for entry in runs {
            index.push(1, *entry).unwrap();
        }
        index
    }

    #[test]
    fn lookups_by_index_and_time() {
        let index = index(&[run(0, 3, 10), run(3, 2, 20), run(5, 5, 20), run(10, 1, 40)]);
        assert_eq!(index.next_index(), 11);
        assert_eq!(index.trim_index(), 0);
        let check = |at: u64, expected_first: Option<u64>| {
            assert_eq!(index.runs_from(at).next().map(|r| r.first_index), expected_first, "from {at}");
        };
        check(0, Some(0));
        check(2, Some(0));
        check(3, Some(3));
        check(9, Some(5));
        check(10, Some(10));
        check(11, None);
        assert_eq!(index.index_at_timestamp(0), 0);
        assert_eq!(index.index_at_timestamp(11), 3);
        assert_eq!(index.index_at_timestamp(20), 3);
        assert_eq!(index.index_at_timestamp(21), 10);
        assert_eq!(index.index_at_timestamp(41), 11);
        assert_eq!(index.timestamp_of(6), Some(20));
        assert_eq!(index.timestamp_of(11), None);
    }

    #[test]
    fn gaps_are_refused() {
        let mut index = index(&[run(0, 3, 10)]);
        assert_eq!(index.push(1, run(4, 1, 10)), Err(GapError { shard_uid: 1, expected: 3, found: 4 }));
    }

    #[test]
    fn trimming_by_index_drops_whole_runs_only() {
        let mut index = index(&[run(1, 3, 10), run(4, 2, 20), run(6, 4, 30)]);
        assert_eq!(index.trim_before(3), 0, "run 1..4 is cut by 3: it stays");
        assert_eq!(index.trim_index(), 1);
        assert_eq!(index.trim_before(4), 3);
        assert_eq!(index.trim_index(), 4);
        assert_eq!(index.trim_before(9), 2, "run 6..10 is cut by 9: it stays");
        assert_eq!(index.trim_index(), 6);
        assert_eq!(index.trim_before(1), 0, "never backwards");
        assert_eq!(index.trim_before(100), 4);
        assert_eq!((index.trim_index(), index.next_index()), (10, 10), "the tip never moves");
    }

    #[test]
    fn expiry_moves_the_trim_horizon_but_never_the_tip() {
        let mut index = index(&[run(0, 3, 10), run(3, 2, 20)]);
        assert_eq!(index.expire_before(15), 3, "the first run's three records");
        assert_eq!(index.trim_index(), 3);
        assert_eq!(index.expire_before(15), 0, "nothing more arrived before 15");
        assert_eq!(index.expire_before(100), 2);
        assert_eq!((index.trim_index(), index.next_index()), (5, 5));
        // A watermark-started index continues where the expired one stopped.
        let mut resumed = ShardIndex::starting_at(5, 20);
        assert!(resumed.push(1, run(4, 1, 30)).is_err());
        resumed.push(1, run(5, 1, 30)).unwrap();
    }
}
