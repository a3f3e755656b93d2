//! Recovery: a torn tail is cut back to the last acknowledged batch, wherever the cut falls;
//! corruption inside acknowledged data stops the journal from opening (naming file and offset)
//! or from serving the bad bytes; and the journal matches an in-memory model across random
//! appends, reads and restarts.

mod common;

use bytes::Bytes;
use common::{append_one, journal_dir, open, read_all, run, small_config, spec};
use proptest::prelude::*;
use sluice_engine::clock::ManualClock;
use sluice_engine::format::{scan_segment, BATCH_HEADER_BYTES};
use sluice_engine::journal::JournalConfig;
use sluice_engine::{AppendRecord, EngineError, Journal, StartPosition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const SEGMENT: &str = "00000000000000000000.seg";

/// Writes `count` single-record batches to shard 1 and stops without closing, as a crash
/// would. Returns the segment's bytes up to its last commit (not the zeros of the space the
/// segment reserved after it).
fn crashed_journal(path: &Path, count: usize) -> Vec<u8> {
    let path = path.to_path_buf();
    let segment = path.join(SEGMENT);
    run(move || async move {
        let journal = open(JournalConfig::new(&path), &ManualClock::new(1_000)).await;
        journal.register_shard(spec(1));
        for i in 0..count {
            append_one(&journal, 1, &format!("record {i} {}", "x".repeat(150))).await;
        }
    });
    let mut bytes = std::fs::read(segment).unwrap();
    bytes.truncate(scan_segment(&bytes, 0).valid_bytes);
    bytes
}

/// Opens the journal in `path` on a fresh executor and returns what shard 1 holds, or the error.
fn reopen(path: &Path, closing: bool) -> Result<Vec<Bytes>, String> {
    let path = path.to_path_buf();
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        sender.send(recovered(&path, closing).await).unwrap();
    });
    receiver.recv().unwrap()
}

/// Opens the journal in `path` on this executor and returns what shard 1 holds, or the error.
async fn recovered(path: &Path, closing: bool) -> Result<Vec<Bytes>, String> {
    match Journal::open(JournalConfig::new(path), Arc::new(ManualClock::new(2_000))).await {
        Ok(journal) => {
            journal.register_shard(spec(1));
            let records = read_all(&journal, 1, 0).await.into_iter().map(|r| r.data).collect();
            if closing {
                journal.close().await.unwrap();
            }
            Ok(records)
        }
        Err(error) => Err(error.to_string()),
    }
}

#[test]
fn a_cut_at_every_byte_of_the_last_batch_loses_only_that_batch() {
    let dir = journal_dir();
    let bytes = crashed_journal(dir.path(), 3);
    let last = scan_segment(&bytes, 0).batches.pop().unwrap();
    let body_end = last.offset + BATCH_HEADER_BYTES + last.header.body_bytes as usize;
    let scratch = journal_dir();
    // Every cut on one executor: an executor per cut (thousands) leaves each one's eventfd and
    // segment descriptor behind, and once, on a loaded machine, hung in io_uring's wait after
    // about 900 of them.
    let (path, cuts) = (scratch.path().to_path_buf(), bytes.clone());
    run(move || async move {
        for cut in last.offset..=cuts.len() {
            std::fs::write(path.join(SEGMENT), &cuts[..cut]).unwrap();
            let records = recovered(&path, true).await.unwrap_or_else(|error| panic!("cut at {cut}: {error}"));
            let expected = if cut >= body_end { 3 } else { 2 };
            assert_eq!(records.len(), expected, "cut at {cut}");
            assert!(records[1].starts_with(b"record 1 "));
        }
    });
    // After the cut, the journal appends again where the torn batch was, and keeps it.
    std::fs::write(scratch.path().join(SEGMENT), &bytes[..last.offset + 100]).unwrap();
    let path = scratch.path().to_path_buf();
    run(move || async move {
        let journal = open(JournalConfig::new(&path), &ManualClock::new(3_000)).await;
        journal.register_shard(spec(1));
        assert_eq!(append_one(&journal, 1, "replacement").await.sequence_number.record_index(), 3);
        journal.close().await.unwrap();
    });
    let records = reopen(scratch.path(), false).unwrap();
    assert_eq!(records.last().unwrap(), &Bytes::from_static(b"replacement"));
}

#[test]
fn a_bit_flip_in_an_acknowledged_batch_refuses_to_open_naming_file_and_offset() {
    let dir = journal_dir();
    let bytes = crashed_journal(dir.path(), 3);
    let batches = scan_segment(&bytes, 0).batches;
    let second = &batches[1];
    let scratch = journal_dir();
    let body =
        second.offset + BATCH_HEADER_BYTES..second.offset + BATCH_HEADER_BYTES + second.header.body_bytes as usize;
    for at in [second.offset, second.offset + 9, body.start, body.start + 40, body.end - 1] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        std::fs::write(scratch.path().join(SEGMENT), &flipped).unwrap();
        let error = reopen(scratch.path(), false).expect_err("corruption must refuse to open");
        assert!(error.contains(SEGMENT) && error.contains(&format!("offset {}", second.offset)), "{error}");
    }
}

#[test]
fn after_a_clean_close_even_the_last_data_batch_is_protected() {
    let dir = journal_dir();
    crashed_journal(dir.path(), 2);
    // A clean open and close appends the closing batch after the two data batches.
    assert_eq!(reopen(dir.path(), true).unwrap().len(), 2);
    let mut bytes = std::fs::read(dir.path().join(SEGMENT)).unwrap();
    let batches = scan_segment(&bytes, 0).batches;
    assert_eq!(batches.len(), 3, "two data batches and the closing one");
    let target = batches[1].offset + BATCH_HEADER_BYTES + 50;
    bytes[target] ^= 0x01;
    std::fs::write(dir.path().join(SEGMENT), &bytes).unwrap();
    let error = reopen(dir.path(), false).unwrap_err();
    assert!(error.contains(&format!("offset {}", batches[1].offset)), "{error}");
}

#[test]
fn corruption_in_a_checkpointed_segment_is_refused_at_read_time() {
    let dir = journal_dir();
    let path = dir.path().to_path_buf();
    let writer_path = path.clone();
    run(move || async move {
        let journal = open(small_config(&writer_path), &ManualClock::new(0)).await;
        journal.register_shard(spec(1));
        for i in 0..100 {
            append_one(&journal, 1, &format!("{i:0>300}")).await;
        }
        journal.close().await.unwrap();
    });
    // The first segment is sealed and checkpointed, so recovery does not scan it; flip a
    // byte of record data in it.
    let segment = path.join(SEGMENT);
    assert!(segment.with_extension("idx").exists());
    let mut bytes = std::fs::read(&segment).unwrap();
    let first = &scan_segment(&bytes, 0).batches[0];
    let at = first.offset + BATCH_HEADER_BYTES + 60;
    bytes[at] ^= 0x80;
    std::fs::write(&segment, &bytes).unwrap();
    run(move || async move {
        let journal = open(small_config(&path), &ManualClock::new(0)).await;
        journal.register_shard(spec(1));
        let error = journal.read(1, 0, 10, 1 << 20).await.unwrap_err();
        assert!(matches!(&error, EngineError::Corrupt { path, .. } if path.ends_with(SEGMENT)), "{error}");
        // Records in intact segments are still served.
        let later = journal.read(1, 90, 10, 1 << 20).await.unwrap();
        assert_eq!(later.records.len(), 10);
        journal.close().await.unwrap();
    });
}

#[derive(Debug, Clone)]
enum Op {
    Append { shard: u64, sizes: Vec<usize> },
    Read { shard: u64, from: u64, records_max: usize },
    ReadAt { shard: u64, position: u8 },
    Restart { clean: bool },
    Tick { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..=3, prop::collection::vec(0usize..3000, 1..6)).prop_map(|(shard, sizes)| Op::Append { shard, sizes }),
        2 => (1u64..=3, 0u64..60, 1usize..20).prop_map(|(shard, from, records_max)| Op::Read { shard, from, records_max }),
        2 => (1u64..=3, any::<u8>()).prop_map(|(shard, position)| Op::ReadAt { shard, position }),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
        1 => (1i64..2000).prop_map(|ms| Op::Tick { ms }),
    ]
}

/// The record a model expects: its data encodes shard, index and size, so any mix-up shows.
fn payload(shard: u64, index: u64, size: usize) -> Vec<u8> {
    let mut data = format!("{shard}/{index}/").into_bytes();
    data.resize(size.max(data.len()), (index % 251) as u8);
    data
}

async fn open_model_journal(path: &Path, clock: &ManualClock) -> Journal {
    let mut config = small_config(path);
    config.tail_cache_bytes_max = 8 * 1024;
    let journal = open(config, clock).await;
    for uid in 1..=3 {
        journal.register_shard(spec(uid));
    }
    journal
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_journal_matches_a_model_across_restarts(ops in prop::collection::vec(op(), 1..40)) {
        let dir = journal_dir();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let clock = ManualClock::new(1_000_000);
            let mut journal = open_model_journal(&path, &clock).await;
            // shard -> (data, arrival time) of every acknowledged record, by index.
            let mut model: BTreeMap<u64, Vec<(Vec<u8>, i64)>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Append { shard, sizes } => {
                        let entries = model.entry(shard).or_default();
                        let records = sizes.iter().enumerate().map(|(i, &size)| AppendRecord {
                            shard_uid: shard,
                            partition_key: Bytes::from_static(b"model"),
                            data: Bytes::from(payload(shard, (entries.len() + i) as u64, size)),
                            sealed: false,
                        }).collect::<Vec<_>>();
                        let acks = journal.append(records.clone()).await.unwrap();
                        for (record, ack) in records.iter().zip(acks) {
                            assert_eq!(ack.sequence_number.record_index(), entries.len() as u64 + 1);
                            entries.push((record.data.to_vec(), ack.timestamp_ms));
                        }
                    }
                    Op::Read { shard, from, records_max } => {
                        let expected = model.get(&shard).map_or(&[][..], |v| v.as_slice());
                        if from as usize > expected.len() {
                            continue;
                        }
                        let batch = journal.read(shard, from + 1, records_max, usize::MAX).await.unwrap();
                        let want: Vec<_> = expected[from as usize..].iter().take(records_max).collect();
                        assert_eq!(batch.records.len(), want.len());
                        for (got, (data, timestamp_ms)) in batch.records.iter().zip(want) {
                            assert_eq!(&got.data[..], &data[..]);
                            assert_eq!(got.timestamp_ms, *timestamp_ms);
                        }
                    }
                    Op::ReadAt { shard, position } => {
                        let expected = model.get(&shard).map_or(&[][..], |v| v.as_slice());
                        let len = expected.len() as u64;
                        let pick = u64::from(position) % (len + 1);
                        // Model offset `p` is record index `p + 1`.
                        let (start, want) = match position % 5 {
                            0 => (StartPosition::TrimHorizon, 1),
                            1 => (StartPosition::Latest, len + 1),
                            2 => (StartPosition::AtIndex(pick + 1), pick + 1),
                            3 => (StartPosition::AfterIndex(pick), pick + 1),
                            _ => {
                                let at = expected.get(pick as usize).map_or(i64::MAX, |(_, t)| *t);
                                let first = expected.iter().position(|(_, t)| *t >= at).unwrap_or(len as usize);
                                (StartPosition::AtTimestamp(at), first as u64 + 1)
                            }
                        };
                        assert_eq!(journal.resolve(shard, start).await.unwrap(), want, "{start:?}");
                    }
                    Op::Restart { clean } => {
                        if clean {
                            journal.close().await.unwrap();
                        }
                        drop(journal);
                        journal = open_model_journal(&path, &clock).await;
                    }
                    Op::Tick { ms } => clock.advance_ms(ms),
                }
            }
            for (shard, expected) in &model {
                let all = read_all(&journal, *shard, 0).await;
                assert_eq!(all.len(), expected.len());
                for (got, (data, _)) in all.iter().zip(expected) {
                    assert_eq!(&got.data[..], &data[..]);
                }
            }
            journal.close().await.unwrap();
        });
    }
}
