//! Memory the journal holds, in heap bytes counted by this binary's allocator (not RSS):
//! what an idle shard costs, what one written shard costs, and that the tail cache's bound is
//! a bound on the memory of its buffers (issue 19, "Scale": 10,000 shards idle in 1 GiB).
//!
//! The journal runs on the simulated disk and executor, on this test's thread, so the
//! thread-local count sees every allocation it makes (the simulated disk's stored bytes too,
//! which the budgets allow for).

mod common;

use bytes::Bytes;
use common::{on_sim_disk, spec};
use sluice_engine::clock::ManualClock;
use sluice_engine::journal::JournalConfig;
use sluice_engine::sim::{DiskConfig, SimDisk, SimRng};
use sluice_engine::{AppendRecord, Journal};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

/// The system allocator, counting the bytes live on each thread.
struct Counting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: allocations during the thread's teardown find the slot gone.
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches only a
// thread-local `Cell` (const-initialized, no destructor), which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

const DIR: &str = "/sim/journal-0";
const SHARDS: u64 = 10_000;
/// What an idle shard may cost the journal: its entry in the shard map (spec, empty run
/// index, no waiters) with the map's spare capacity. 10,000 shards then take a few MiB.
const IDLE_SHARD_BYTES_MAX: isize = 512;
/// What a shard written once may cost beyond that: one run in its index and in the active
/// segment's run list and per-shard maps, and its record on the simulated disk.
const WRITTEN_SHARD_BYTES_MAX: isize = 1024;

fn disk() -> SimDisk {
    SimDisk::new(DiskConfig::default(), SimRng::new(1))
}

fn record(shard_uid: u64) -> AppendRecord {
    AppendRecord {
        shard_uid,
        partition_key: Bytes::from_static(b"k"),
        data: Bytes::from_static(&[0x5A; 100]),
        sealed: false,
    }
}

#[test]
fn idle_and_written_shards_cost_hundreds_of_bytes() {
    let disk = disk();
    let (idle, written) = on_sim_disk(&disk, |storage| async move {
        let mut config = JournalConfig::new(DIR);
        // The cache is bounded on its own (below); here only the shards' own costs count.
        config.tail_cache_bytes_max = 0;
        // The simulated disk would hold the segment's reserved space as bytes in memory.
        config.segment_reserve_bytes = 0;
        let journal = Journal::open_in(storage, config, Arc::new(ManualClock::new(1_000))).await.expect("open");
        let before = live_bytes();
        for uid in 1..=SHARDS {
            journal.register_shard(spec(uid));
        }
        let registered = live_bytes();
        // One record into every shard, an append per hundred shards as a client would.
        let uids: Vec<u64> = (1..=SHARDS).collect();
        for chunk in uids.chunks(100) {
            journal.append(chunk.iter().map(|&uid| record(uid)).collect()).await.expect("append");
        }
        let written = live_bytes();
        journal.close().await.expect("close");
        ((registered - before) / SHARDS as isize, (written - registered) / SHARDS as isize)
    });
    eprintln!("an idle shard: {idle} B; written once: {written} B more");
    assert!(idle <= IDLE_SHARD_BYTES_MAX, "an idle shard costs {idle} B, at most {IDLE_SHARD_BYTES_MAX} expected");
    assert!(
        written <= WRITTEN_SHARD_BYTES_MAX,
        "a shard written once costs {written} B more, at most {WRITTEN_SHARD_BYTES_MAX} expected"
    );
}

#[test]
fn the_tail_cache_bound_bounds_its_memory() {
    const CACHE_BYTES: usize = 256 << 10;
    const COMMITS: usize = 64;
    let disk = disk();
    let grown = on_sim_disk(&disk, |storage| async move {
        let mut config = JournalConfig::new(DIR);
        config.tail_cache_bytes_max = CACHE_BYTES;
        // The simulated disk would hold the segment's reserved space as bytes in memory.
        config.segment_reserve_bytes = 0;
        let journal = Journal::open_in(storage, config, Arc::new(ManualClock::new(1_000))).await.expect("open");
        journal.register_shard(spec(1));
        let before = live_bytes();
        // One small record per commit: each commit's batch is a few hundred bytes.
        for _ in 0..COMMITS {
            journal.append(vec![record(1)]).await.expect("append");
        }
        let grown = live_bytes() - before;
        journal.close().await.expect("close");
        grown
    });
    // The cache's buffers, plus the commits' bytes on the simulated disk and their runs.
    let allowed = (CACHE_BYTES + COMMITS * 4096) as isize;
    eprintln!("{COMMITS} small commits hold {grown} B");
    assert!(grown <= allowed, "{COMMITS} small commits hold {grown} B, at most {allowed} expected");
}

/// Issue 19: the run index grows with segments, not with commits. One shard takes one record
/// per group commit through many sealed segments; the index then holds one span per sealed
/// segment and the runs of the active segment only, however many commits the sealed ones
/// took. (Before, it held every run: one entry per commit.) Counts entries, not time.
#[test]
fn the_run_index_holds_one_span_per_sealed_segment_not_one_run_per_commit() {
    const COMMITS: usize = 2_000;
    let disk = disk();
    let (footprints, segments, loads) = on_sim_disk(&disk, |storage| async move {
        let mut config = JournalConfig::new(DIR);
        config.segment_bytes_max = 64 << 10;
        config.tail_cache_bytes_max = 0;
        let journal = Journal::open_in(storage, config, Arc::new(ManualClock::new(1_000))).await.expect("open");
        journal.register_shard(spec(1));
        let mut footprints = Vec::new();
        for commit in 1..=COMMITS {
            journal.append(vec![record(1)]).await.expect("append");
            if commit % (COMMITS / 4) == 0 {
                footprints.push((journal.segment_count(), journal.index_footprint()));
            }
        }
        // A reader from the start walks every sealed segment: one checkpoint load each, then
        // every later read in the same segment finds its runs cached.
        let mut from = 0;
        loop {
            let batch = journal.read(1, from, 100, usize::MAX).await.expect("read");
            if batch.records.is_empty() {
                break;
            }
            from = batch.next_index;
        }
        assert_eq!(from, COMMITS as u64 + 1, "every record read back");
        let segments = journal.segment_count();
        let loads = journal.stats().sealed_run_loads;
        journal.close().await.expect("close");
        (footprints, segments, loads)
    });
    eprintln!("{COMMITS} one-record commits: {footprints:?}; {loads} checkpoint loads over {segments} segments");
    // A commit of one 100-byte record takes one 512-byte block: a segment holds at most
    // 64 KiB / 512 B of them, whatever the commit count.
    let runs_per_segment_max = (64 << 10) / 512;
    assert!(segments > 10, "the commits span many segments: {segments}");
    for (segment_count, footprint) in &footprints {
        assert_eq!(footprint.sealed_spans, segment_count - 1, "one span per sealed segment: {footprint:?}");
        assert!(
            footprint.active_runs <= runs_per_segment_max,
            "in-memory runs grow with commits: {footprint:?} in {segment_count} segments"
        );
    }
    assert_eq!(loads, segments as u64 - 1, "each sealed segment's checkpoint is read once");
}
