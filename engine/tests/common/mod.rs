//! Helpers shared by the engine's integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use bytes::Bytes;
use sluice_engine::clock::ManualClock;
use sluice_engine::journal::JournalConfig;
use sluice_engine::sequence::ShardSeqPrefix;
use sluice_engine::{AppendRecord, Appended, Journal, ShardSpec, StoredRecord};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// A fresh directory on the real disk (inside the cargo target directory), not tmpfs.
pub fn journal_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir on disk")
}

/// Runs `work` on a new glommio executor thread, as each daemon core does.
pub fn run<F, Fut>(work: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(work)
        .expect("spawn executor")
        .join()
        .expect("executor thread");
}

pub fn spec(uid: u64) -> ShardSpec {
    ShardSpec { uid, seq_prefix: ShardSeqPrefix::new(1_700_000_000 + uid, uid as u32), retention_ms: 24 * 3_600_000 }
}

/// Tiny segments (so tests roll many), tiny batches (so commits span several) and no tail
/// cache (so reads go to disk).
pub fn small_config(dir: &Path) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    config.segment_bytes_max = 16 * 1024;
    // Commits of several records span several batches.
    config.batch_bytes_max = 4096;
    config.tail_cache_bytes_max = 0;
    config
}

pub async fn open(config: JournalConfig, clock: &ManualClock) -> Journal {
    Journal::open(config, Arc::new(clock.clone())).await.expect("open journal")
}

pub async fn append_one(journal: &Journal, shard_uid: u64, data: &str) -> Appended {
    let record = AppendRecord {
        shard_uid,
        partition_key: Bytes::from_static(b"pk"),
        data: Bytes::from(data.to_string()),
        sealed: false,
    };
    journal.append(vec![record]).await.expect("append").remove(0)
}

pub async fn read_all(journal: &Journal, shard_uid: u64, from_index: u64) -> Vec<StoredRecord> {
    let mut records = Vec::new();
    let mut next = from_index;
    loop {
        let batch = journal.read(shard_uid, next, 37, 4096).await.expect("read");
        if batch.records.is_empty() {
            return records;
        }
        next = batch.next_index;
        records.extend(batch.records);
    }
}

/// Runs `work` on a fresh simulated process: a deterministic executor on `disk`. Returns what
/// `work` returns; panics if the work deadlocks.
pub fn on_sim_disk<T, F, Fut>(disk: &sluice_engine::sim::SimDisk, work: F) -> T
where
    T: 'static,
    F: FnOnce(sluice_engine::sim::SimStorage) -> Fut,
    Fut: Future<Output = T> + 'static,
{
    use sluice_engine::sim::{RunOutcome, SimExecutor, SimRng};
    let executor = SimExecutor::new(SimRng::new(7));
    let storage = disk.storage(&executor);
    let outcome = executor.run(work(storage), || false, 10_000_000);
    executor.shutdown();
    disk.kill();
    match outcome {
        RunOutcome::Finished(value) => value,
        RunOutcome::Stopped => panic!("simulated process lost power"),
        RunOutcome::Deadlock => panic!("simulated process deadlocked"),
        RunOutcome::Exhausted => panic!("simulated process livelocked"),
    }
}

/// A record of shard 1 with key `k` and `data`.
pub fn shard_one_record(data: &str) -> AppendRecord {
    AppendRecord {
        shard_uid: 1,
        partition_key: Bytes::from_static(b"k"),
        data: Bytes::from(data.to_owned()),
        sealed: false,
    }
}

/// The segment index checkpoints (`*.idx`) in journal directory `dir`.
pub fn checkpoint_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let files = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path());
    files.filter(|file| file.extension().is_some_and(|extension| extension == "idx")).collect()
}

/// The runs each checkpoint in journal directory `dir` lists, decoded against its segment.
pub fn checkpointed_runs(dir: &Path) -> Vec<sluice_engine::format::SegmentRuns> {
    let decode = |file: std::path::PathBuf| {
        let segment = file.with_extension("seg");
        let base: u64 = segment.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let size = std::fs::metadata(&segment).unwrap().len();
        sluice_engine::format::decode_segment_checkpoint(&std::fs::read(&file).unwrap(), base, size).unwrap()
    };
    checkpoint_files(dir).into_iter().map(decode).collect()
}
