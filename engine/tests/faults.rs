//! Faults injected at the journal's I/O boundary (`journal::faults`): EIO on write, EIO on
//! fdatasync, and torn writes. A failed commit acknowledges nothing and uses no sequence
//! number; the journal keeps going; a restart finds exactly what was acknowledged.

mod common;

use bytes::Bytes;
use common::{append_one, journal_dir, read_all, run, spec};
use sluice_engine::clock::ManualClock;
use sluice_engine::journal::faults::{self, Fault};
use sluice_engine::journal::JournalConfig;
use sluice_engine::{AppendRecord, EngineError, Journal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A record whose commit spans five 512-byte blocks, so a torn write can keep part of it.
fn big(text: &str) -> AppendRecord {
    AppendRecord { shard_uid: 1, partition_key: Bytes::from_static(b"k"), data: Bytes::from(text.repeat(2000)) }
}

async fn open(path: &Path) -> Journal {
    let journal = Journal::open(JournalConfig::new(path), Arc::new(ManualClock::new(1_000))).await.unwrap();
    journal.register_shard(spec(1));
    journal
}

/// What shard 1 holds after a restart, in a fresh executor.
fn after_restart(path: PathBuf) -> Vec<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let journal = open(&path).await;
        let records = read_all(&journal, 1, 0).await;
        sender.send(records.iter().map(|r| String::from_utf8(r.data[..1].to_vec()).unwrap()).collect()).unwrap();
        journal.close().await.unwrap();
    });
    receiver.recv().unwrap()
}

fn check_failed_commit_acknowledges_nothing(fault: Fault) {
    let dir = journal_dir();
    let path = dir.path().to_path_buf();
    let writer_path = path.clone();
    run(move || async move {
        let journal = open(&writer_path).await;
        assert_eq!(append_one(&journal, 1, "a").await.sequence_number.record_index(), 1);
        faults::plan([Some(fault)]);
        let error = journal.append(vec![big("b")]).await.unwrap_err();
        assert!(matches!(error, EngineError::WriteFailed { .. }), "{error:?}");
        // Nothing of the failed commit is served, and its sequence number goes to the next.
        assert_eq!(read_all(&journal, 1, 0).await.len(), 1);
        assert_eq!(journal.append(vec![big("c")]).await.unwrap()[0].sequence_number.record_index(), 2);
        journal.close().await.unwrap();
    });
    assert_eq!(after_restart(path), ["a", "c"], "{fault:?}");
}

#[test]
fn eio_on_write_acknowledges_nothing() {
    check_failed_commit_acknowledges_nothing(Fault::WriteError);
}

#[test]
fn eio_on_fdatasync_acknowledges_nothing_even_though_the_bytes_landed() {
    check_failed_commit_acknowledges_nothing(Fault::SyncError);
}

#[test]
fn a_torn_write_then_a_successful_commit_keeps_only_acknowledged_records() {
    check_failed_commit_acknowledges_nothing(Fault::TornWrite { blocks: 2 });
}

#[test]
fn a_torn_write_then_a_crash_recovers_to_the_last_acknowledged_commit() {
    for blocks in [0, 1, 2, 3] {
        let dir = journal_dir();
        let path = dir.path().to_path_buf();
        let writer_path = path.clone();
        run(move || async move {
            let journal = open(&writer_path).await;
            append_one(&journal, 1, "a").await;
            faults::plan([Some(Fault::TornWrite { blocks })]);
            assert!(journal.append(vec![big("b")]).await.is_err());
            // The process dies here: no close, no further commit.
        });
        assert_eq!(after_restart(path.clone()), ["a"], "torn after {blocks} blocks");
        // And the journal goes on after the recovered tail.
        run(move || async move {
            let journal = open(&path).await;
            assert_eq!(append_one(&journal, 1, "d").await.sequence_number.record_index(), 2);
            journal.close().await.unwrap();
        });
    }
}

/// A commit whose writes all landed but whose fsync failed was never acknowledged. If the
/// process dies before another commit overwrites it, recovery finds it whole and serves it:
/// the producer got an error, so it may or may not be there (as after a timeout in Kinesis),
/// and its sequence number is one no acknowledged record ever had.
#[test]
fn a_commit_whose_fsync_failed_may_surface_after_a_crash_but_reuses_no_sequence_number() {
    let dir = journal_dir();
    let path = dir.path().to_path_buf();
    let writer_path = path.clone();
    run(move || async move {
        let journal = open(&writer_path).await;
        append_one(&journal, 1, "a").await;
        faults::plan([Some(Fault::SyncError)]);
        assert!(journal.append(vec![big("b")]).await.is_err());
    });
    let found = after_restart(path.clone());
    assert!(found == ["a"] || found == ["a", "b"], "{found:?}");
    run(move || async move {
        let journal = open(&path).await;
        let next = append_one(&journal, 1, "c").await.sequence_number.record_index();
        assert_eq!(next, 1 + found.len() as u64, "the next record continues after whatever recovery found");
        journal.close().await.unwrap();
    });
}
