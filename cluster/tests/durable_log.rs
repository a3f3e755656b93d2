//! The durable Raft log on the simulated disk: what was synced survives kills and power
//! losses, an unsynced tail comes back as a prefix or not at all, and a torn tail cut at
//! recovery never resurfaces behind later appends. Seeded; `SIMULATION_SEED=N` replays one.

use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState};
use sluice_cluster::durable_log::DurableLog;
use sluice_cluster::log_storage::LogStorage;
use sluice_cluster::log_store::LogStore;
use sluice_engine::sim::{DiskConfig, RunOutcome, SimDisk, SimExecutor, SimRng, SimStorage};

const DIR: &str = "/raft";
/// Small segments, so that every test's log spans several.
const SEGMENT_BYTES: usize = 2 << 10;

fn entry(index: u64, term: u64, length: usize) -> Entry {
    let data: Vec<u8> = (0..length).map(|at| (index as usize * 7 + at + term as usize) as u8).collect();
    Entry { index, term, data: Bytes::from(data), ..Entry::default() }
}

fn block_on<T: 'static>(executor: &SimExecutor, future: impl Future<Output = T> + 'static) -> T {
    match executor.run(future, || false, 10_000_000) {
        RunOutcome::Finished(value) => value,
        RunOutcome::Stopped => unreachable!("no stop condition"),
        RunOutcome::Deadlock => panic!("the simulation deadlocked"),
        RunOutcome::Exhausted => panic!("the simulation ran out of polls"),
    }
}

/// Opens the log with nothing kept in memory but what follows the commit, and reads every
/// entry back from disk through the log's index.
async fn open(storage: SimStorage) -> (DurableLog<SimStorage>, Vec<Entry>, HardState) {
    let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
    let (log, store) =
        DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("the log opens");
    let last_index = store.last_index();
    let entries = match last_index {
        0 => Vec::new(),
        _ => log.read(1, last_index, usize::MAX, &store).await.expect("the log reads back"),
    };
    assert_eq!(entries.len() as u64, last_index);
    (log, entries, store.hard_state())
}

/// The process dies (a kill) or the machine loses power.
fn crash(disk: &SimDisk, power_loss: bool) {
    if power_loss {
        disk.power_loss();
    } else {
        disk.kill();
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SIMULATION_SEED") {
        Ok(seed) => vec![seed.parse().expect("a number")],
        Err(_) => (0..64).collect(),
    }
}

#[test]
fn synced_entries_and_the_hard_state_survive_kills_and_power_losses() {
    for alignment in [512, 4096] {
        let executor = SimExecutor::new(SimRng::new(1));
        let disk = SimDisk::new(DiskConfig { alignment, ..DiskConfig::default() }, SimRng::new(2));
        let storage = disk.storage(&executor);
        let written: Vec<Entry> =
            (1..=40).map(|index| entry(index, 1 + index / 10, (index as usize * 53) % 900)).collect();
        let batches = written.clone();
        block_on(&executor, async move {
            let (mut log, entries, _) = open(storage).await;
            assert!(entries.is_empty());
            for batch in batches.chunks(7) {
                log.append(batch).await.expect("append");
                log.sync().await.expect("sync");
            }
            log.save_hard_state(&HardState { term: 4, vote: 3, commit: 40, ..HardState::default() })
                .await
                .expect("state");
        });
        for power_loss in [false, true] {
            crash(&disk, power_loss);
            let storage = disk.storage(&executor);
            let (entries, state) = block_on(&executor, async move {
                let (_log, entries, state) = open(storage).await;
                (entries, state)
            });
            assert_eq!(entries, written, "alignment {alignment}, power loss {power_loss}");
            assert_eq!((state.term, state.vote, state.commit), (4, 3, 40));
        }
        executor.shutdown();
    }
}

#[test]
fn an_unsynced_tail_survives_as_a_prefix_and_never_resurfaces_after_recovery() {
    let mut recovered_lengths = std::collections::BTreeSet::new();
    for seed in seeds() {
        let mut rng = SimRng::new(seed);
        let executor = SimExecutor::new(rng.fork());
        let disk = SimDisk::new(DiskConfig { yields_max: 2, ..DiskConfig::default() }, rng.fork());
        let synced: Vec<Entry> = (1..=5).map(|index| entry(index, 1, rng.below(700) as usize)).collect();
        let unsynced: Vec<Entry> = (6..=12).map(|index| entry(index, 1, rng.below(700) as usize)).collect();
        let (first, second) = (synced.clone(), unsynced.clone());
        let storage = disk.storage(&executor);
        block_on(&executor, async move {
            let (mut log, _, _) = open(storage).await;
            log.append(&first).await.expect("append");
            log.sync().await.expect("sync");
            for entry in &second {
                log.append(std::slice::from_ref(entry)).await.expect("append");
            }
        });
        disk.power_loss();
        // Recovery keeps the synced entries and some prefix of the rest; then a new leader's
        // entries (term 2) replace whatever followed, and are synced.
        let storage = disk.storage(&executor);
        let replaced_from = block_on(&executor, async move {
            let (mut log, entries, _) = open(storage).await;
            assert!(entries.len() >= 5, "seed {seed}: synced entries lost ({} left)", entries.len());
            let all: Vec<Entry> = synced.iter().chain(&unsynced).cloned().collect();
            assert_eq!(entries, all[..entries.len()], "seed {seed}: not a prefix of what was written");
            let from = entries.len() as u64 + 1;
            let newer: Vec<Entry> = (from..from + 3).map(|index| entry(index, 2, 100)).collect();
            log.append(&newer).await.expect("append");
            log.sync().await.expect("sync");
            (entries, newer)
        });
        disk.power_loss();
        let storage = disk.storage(&executor);
        let entries = block_on(&executor, async move { open(storage).await.1 });
        let (kept, newer) = replaced_from;
        recovered_lengths.insert(kept.len());
        let expected: Vec<Entry> = kept.into_iter().chain(newer).collect();
        assert_eq!(entries, expected, "seed {seed}: a stale frame came back, or a synced one went");
        executor.shutdown();
    }
    if std::env::var("SIMULATION_SEED").is_err() {
        // The power losses really took some unsynced entries and left others.
        assert!(recovered_lengths.len() > 2, "recovered lengths {recovered_lengths:?}");
    }
}

/// A flipped bit in a frame that was synced, with appends after it, is damage, not a torn
/// tail: the log refuses to open instead of dropping the entries from there on (which this
/// member told its peers it had). In the first segment and in the last one alike.
#[test]
fn damage_to_a_synced_frame_stops_recovery_instead_of_shortening_the_log() {
    use sluice_cluster::durable_log::segment_name;
    use sluice_cluster::ClusterError;
    // Place 0 is the first segment's first frame; the last segment's first frame is found
    // after the writes.
    for damaged_segment in ["first", "last"] {
        let executor = SimExecutor::new(SimRng::new(21));
        let disk = SimDisk::new(DiskConfig::default(), SimRng::new(22));
        let storage = disk.storage(&executor);
        let written: Vec<Entry> = (1..=30).map(|index| entry(index, 1, 150)).collect();
        let batches = written.clone();
        block_on(&executor, async move {
            let (mut log, _, _) = open(storage).await;
            for batch in batches.chunks(3) {
                log.append(batch).await.expect("append");
                log.sync().await.expect("sync");
            }
        });
        let segments: Vec<std::path::PathBuf> = disk
            .files()
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("raft-")))
            .collect();
        assert!(segments.len() >= 3, "segments {segments:?}");
        let path = if damaged_segment == "first" { &segments[0] } else { segments.last().unwrap() };
        assert!(damaged_segment == "last" || path.ends_with(segment_name(0)));
        // A byte of the first frame's data (header 12 bytes, fixed fields 21).
        assert!(disk.flip_bit(path, 40, 2));
        disk.kill();
        let storage = disk.storage(&executor);
        let opened = block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.map(|_| ())
        });
        match opened {
            Err(ClusterError::Corrupt { reason, .. }) => {
                assert!(reason.contains("was durable"), "{damaged_segment}: {reason}")
            }
            other => panic!("{damaged_segment} segment damaged: the log opened with {other:?}"),
        }
        executor.shutdown();
    }
}

#[test]
fn a_replaced_suffix_stays_replaced_across_restarts() {
    let executor = SimExecutor::new(SimRng::new(5));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(6));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let (mut log, _, _) = open(storage).await;
        log.append(&(1..=6).map(|index| entry(index, 1, 300)).collect::<Vec<_>>()).await.expect("append");
        // A follower learns that entries 4.. were a deposed leader's: the new ones replace them.
        log.append(&[entry(4, 2, 10)]).await.expect("append");
        log.sync().await.expect("sync");
    });
    disk.power_loss();
    let storage = disk.storage(&executor);
    let entries = block_on(&executor, async move { open(storage).await.1 });
    let expected: Vec<Entry> = (1..=3).map(|index| entry(index, 1, 300)).chain([entry(4, 2, 10)]).collect();
    assert_eq!(entries, expected);
    executor.shutdown();
}

#[test]
fn reads_page_through_the_log_by_its_index_whatever_the_read_size() {
    let executor = SimExecutor::new(SimRng::new(7));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(8));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let (mut log, _, _) = open(storage).await;
        let conf_state = ConfState::from((vec![1], vec![]));
        let store = LogStore::new(HardState::default(), conf_state, (0, 0), 0);
        let first: Vec<Entry> = (1..=12).map(|index| entry(index, 1, 700 + index as usize * 311)).collect();
        let offsets = log.append(&first).await.expect("append");
        store.append(&first, &offsets);
        // A new leader replaces 9.. : those entries now lie after the old ones in the file.
        let second: Vec<Entry> = (9..=14).map(|index| entry(index, 2, 5_000)).collect();
        let offsets = log.append(&second).await.expect("append");
        store.append(&second, &offsets);
        log.sync().await.expect("sync");
        let expected: Vec<Entry> = first[..8].iter().chain(&second).cloned().collect();
        // Reads smaller than one frame return one entry each (the frame is read on its own);
        // larger ones cross from the old frames to the appended ones.
        for bytes_max in [1, 3_000, 20_000, usize::MAX] {
            let mut read = Vec::new();
            while (read.len() as u64) < store.last_index() {
                let next = read.len() as u64 + 1;
                let entries = log.read(next, store.last_index(), bytes_max, &store).await.expect("read");
                assert!(!entries.is_empty());
                if bytes_max == 1 {
                    assert_eq!(entries.len(), 1);
                }
                read.extend(entries);
            }
            assert_eq!(read, expected, "read {bytes_max} bytes at a time");
        }
    });
    executor.shutdown();
}

#[test]
fn compaction_deletes_old_segments_and_recovery_starts_after_it() {
    for power_loss in [false, true] {
        let executor = SimExecutor::new(SimRng::new(9));
        let disk = SimDisk::new(DiskConfig::default(), SimRng::new(10));
        let storage = disk.storage(&executor);
        let written: Vec<Entry> = (1..=60).map(|index| entry(index, 1 + index / 25, 300)).collect();
        let batches = written.clone();
        let segments = block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            let (mut log, store) =
                DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("opens");
            for batch in batches.chunks(4) {
                let places = log.append(batch).await.expect("append");
                log.sync().await.expect("sync");
                store.append(batch, &places);
            }
            let before = log.segment_count();
            assert!(before > 4, "60 entries of 300 bytes in {before} segments of {SEGMENT_BYTES} bytes");
            log.save_hard_state(&HardState { term: 3, vote: 1, commit: 50, ..HardState::default() })
                .await
                .expect("state");
            // Nothing to drop below the first segment's last entry.
            assert_eq!(log.freed_by_compaction(1), 0);
            store.compact(40);
            let dropped = log.compact(40, store.term_of(40).unwrap(), &store).await.expect("compact");
            assert!(dropped > 0 && log.segment_count() == before - dropped);
            // What is left still reads back, from the new start.
            let read = log.read(41, 60, usize::MAX, &store).await.expect("read");
            assert_eq!(read.iter().map(|entry| entry.index).collect::<Vec<_>>(), (41..=60).collect::<Vec<_>>());
            log.segment_count()
        });
        // A power loss may bring deleted segments back (their removal was not synced):
        // recovery skips what they hold.
        crash(&disk, power_loss);
        let storage = disk.storage(&executor);
        let expected = written[40..].to_vec();
        block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            let (mut log, store) =
                DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("reopens");
            assert_eq!((store.first_index(), store.last_index()), (41, 60), "power loss {power_loss}");
            assert_eq!(store.term_of(40), Some(1 + 40 / 25));
            assert!(log.segment_count() >= segments);
            let read = log.read(41, 60, usize::MAX, &store).await.expect("read");
            assert_eq!(read, expected, "power loss {power_loss}");
            // A new leader replaces entries 55.. (after the commit) after the restart; it stays
            // replaced.
            let newer: Vec<Entry> = (55..=57).map(|index| entry(index, 4, 200)).collect();
            let places = log.append(&newer).await.expect("append");
            log.sync().await.expect("sync");
            store.append(&newer, &places);
        });
        disk.power_loss();
        let storage = disk.storage(&executor);
        let expected: Vec<Entry> =
            written[40..54].iter().cloned().chain((55..=57).map(|index| entry(index, 4, 200))).collect();
        block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            let (log, store) =
                DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("reopens");
            assert_eq!((store.first_index(), store.last_index()), (41, 57));
            assert_eq!(log.read(41, 57, usize::MAX, &store).await.expect("read"), expected);
        });
        executor.shutdown();
    }
}

/// A member far behind installs a snapshot past its log's end (its entries all gone) or inside
/// it (entries of another leader after it): the log continues right after the snapshot, a crash
/// between the compaction record and the hard state opens with the commit raised to it, and no
/// entry of the log before comes back.
#[test]
fn an_installed_snapshot_replaces_the_log_and_survives_crashes() {
    for (snapshot_index, power_loss, save_hard_state) in
        [(90, false, true), (90, true, true), (25, true, true), (90, true, false), (25, false, false)]
    {
        let executor = SimExecutor::new(SimRng::new(11));
        let disk = SimDisk::new(DiskConfig::default(), SimRng::new(12));
        let storage = disk.storage(&executor);
        let case = format!("snapshot at {snapshot_index}, power loss {power_loss}, hard state saved {save_hard_state}");
        block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            let (mut log, store) =
                DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("opens");
            let written: Vec<Entry> = (1..=40).map(|index| entry(index, 1, 300)).collect();
            for batch in written.chunks(4) {
                let places = log.append(batch).await.expect("append");
                log.sync().await.expect("sync");
                store.append(batch, &places);
            }
            log.save_hard_state(&HardState { term: 1, vote: 2, commit: 20, ..HardState::default() })
                .await
                .expect("state");
            log.install_snapshot(snapshot_index, 3).await.expect("install");
            assert_eq!(log.segment_count(), 1);
            if save_hard_state {
                log.save_hard_state(&HardState { term: 3, vote: 0, commit: snapshot_index, ..HardState::default() })
                    .await
                    .expect("state");
                store.restore(snapshot_index, 3);
                // The log continues after the snapshot.
                let next: Vec<Entry> =
                    (snapshot_index + 1..=snapshot_index + 5).map(|index| entry(index, 3, 200)).collect();
                let places = log.append(&next).await.expect("append");
                log.sync().await.expect("sync");
                store.append(&next, &places);
            }
        });
        crash(&disk, power_loss);
        let storage = disk.storage(&executor);
        block_on(&executor, async move {
            let conf_state = ConfState::from((vec![1, 2, 3], vec![]));
            let (log, store) =
                DurableLog::open(storage, Path::new(DIR), conf_state, 0, SEGMENT_BYTES).await.expect("reopens");
            assert_eq!(store.first_index(), snapshot_index + 1, "{case}");
            assert_eq!(store.term_of(snapshot_index), Some(3), "{case}");
            assert!(store.hard_state().commit >= snapshot_index, "{case}");
            let last_index = store.last_index();
            if save_hard_state {
                assert_eq!(last_index, snapshot_index + 5, "{case}");
                let read = log.read(snapshot_index + 1, last_index, usize::MAX, &store).await.expect("read");
                assert!(read.iter().all(|entry| entry.term == 3 && entry.data.len() == 200), "{case}");
            } else {
                // Nothing after the snapshot, unless a power loss brought back a deleted
                // segment of the old log with entries past it (a leader's, replaced if they
                // differ from the next leader's).
                let resurrected = power_loss && snapshot_index < 40 && last_index == 40;
                assert!(last_index == snapshot_index || resurrected, "{case}: log ends at {last_index}");
            }
        });
        executor.shutdown();
    }
}

/// The membership a group started with holds until a change is saved; the saved one is what
/// opens after kills and power losses, and a damaged record stops the log from opening.
#[test]
fn a_saved_membership_is_what_the_log_opens_with() {
    let executor = SimExecutor::new(SimRng::new(13));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(14));
    let open_with = |storage: SimStorage| async move {
        let founders = ConfState::from((vec![1, 2, 3], vec![]));
        let (log, store) = DurableLog::open(storage, Path::new(DIR), founders, 0, SEGMENT_BYTES).await?;
        Ok::<_, sluice_cluster::ClusterError>((log, store.conf_index(), store.conf_state()))
    };
    let storage = disk.storage(&executor);
    let changed = ConfState::from((vec![1, 2, 4], vec![5]));
    let saved = changed.clone();
    block_on(&executor, async move {
        let (log, index, conf_state) = open_with(storage).await.expect("opens");
        assert_eq!((index, conf_state.voters), (0, vec![1, 2, 3]));
        log.save_conf(57, &saved).await.expect("saved");
    });
    for power_loss in [false, true] {
        crash(&disk, power_loss);
        let storage = disk.storage(&executor);
        let expected = changed.clone();
        block_on(&executor, async move {
            let (_, index, conf_state) = open_with(storage).await.expect("reopens");
            assert_eq!((index, conf_state), (57, expected), "power loss {power_loss}");
        });
    }
    assert!(disk.flip_bit(&Path::new(DIR).join("raft.conf"), 30, 1));
    let storage = disk.storage(&executor);
    block_on(&executor, async move {
        let opened = open_with(storage).await;
        assert!(matches!(opened, Err(sluice_cluster::ClusterError::Corrupt { .. })), "a damaged membership opened");
    });
    executor.shutdown();
}

#[test]
fn a_log_of_the_layout_before_segments_opens_as_the_first_segment() {
    use sluice_cluster::codec::{self, LogEntry};
    use sluice_cluster::durable_log::{segment_name, LEGACY_LOG_FILE};
    use sluice_engine::storage::{IoBuffer, Storage, StorageFile};
    use std::rc::Rc;

    let executor = SimExecutor::new(SimRng::new(11));
    let disk = SimDisk::new(DiskConfig::default(), SimRng::new(12));
    let storage = disk.storage(&executor);
    let written: Vec<Entry> = (1..=9).map(|index| entry(index, 1, 400)).collect();
    let expected = written.clone();
    block_on(&executor, async move {
        // `raft.log` as the build before segments wrote it: frames from the start, zero-padded.
        let mut frames = Vec::new();
        for entry in &written {
            let entry =
                LogEntry { term: entry.term, index: entry.index, data: entry.data.clone(), ..LogEntry::default() };
            codec::encode_entry(&entry, &mut frames);
        }
        storage.prepare_dir(Path::new(DIR)).await.unwrap();
        let file = storage.open(&Path::new(DIR).join(LEGACY_LOG_FILE), true).await.unwrap();
        let padded = frames.len().div_ceil(file.alignment()) * file.alignment();
        let mut buffer = file.alloc_buffer(padded);
        buffer.bytes_mut()[..frames.len()].copy_from_slice(&frames);
        buffer.bytes_mut()[frames.len()..].fill(0);
        file.write_at(Rc::new(buffer), 0).await.unwrap();
        file.fdatasync().await.unwrap();
        drop(file);
        let (_log, entries, _) = open(storage.clone()).await;
        assert_eq!(entries, expected);
        let names = storage.list(Path::new(DIR)).await.unwrap();
        assert!(names.contains(&segment_name(0)) && !names.iter().any(|name| name == LEGACY_LOG_FILE), "{names:?}");
    });
    executor.shutdown();
}
