//! A full disk, for real: the journal lives on a small ext4 filesystem in a loop device,
//! which a filler file fills up. Appends must fail with a clear error and acknowledge
//! nothing, reads must keep working, and appends must resume once space returns; after a
//! restart exactly the acknowledged records are there.
//!
//! Needs root and loop devices (CI runs as root); elsewhere it says so and passes.

mod common;

use bytes::Bytes;
use common::{read_all, run, spec};
use sluice_engine::clock::ManualClock;
use sluice_engine::journal::JournalConfig;
use sluice_engine::{AppendRecord, EngineError, Journal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

struct LoopMount {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopMount {
    fn new(megabytes: u64) -> Option<LoopMount> {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let image = dir.path().join("disk.img");
        let mount_point = dir.path().join("mnt");
        std::fs::create_dir(&mount_point).unwrap();
        let ok = |command: &mut Command| command.output().map(|out| out.status.success()).unwrap_or(false);
        let made = ok(Command::new("truncate").arg("-s").arg(format!("{megabytes}M")).arg(&image))
            && ok(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(&image))
            && ok(Command::new("mount").arg("-o").arg("loop").arg(&image).arg(&mount_point));
        made.then_some(LoopMount { mount_point, _dir: dir })
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // Lazy: detaches even while a failed test's files are still open, so no loop mount
        // outlives the test (the loop device is freed once the last file closes).
        let _ = Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}

fn fill(path: &Path, leave_bytes: u64) {
    let free = fs_free_bytes(path.parent().unwrap());
    let size = free.saturating_sub(leave_bytes);
    let file = std::fs::File::create(path).unwrap();
    // fallocate reserves real blocks, unlike a sparse truncate.
    let status = Command::new("fallocate").arg("-l").arg(size.to_string()).arg(path).status().unwrap();
    assert!(status.success());
    file.sync_all().unwrap();
}

fn fs_free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").arg("--output=avail").arg("-B1").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().trim().parse().unwrap()
}

fn record(i: usize) -> AppendRecord {
    AppendRecord {
        shard_uid: 1,
        partition_key: Bytes::from_static(b"k"),
        data: Bytes::from(format!("{i:0>8}").repeat(512)),
        sealed: false,
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_when_space_returns() {
    let Some(disk) = LoopMount::new(48) else {
        println!("SKIPPED: cannot make and mount a loop filesystem here (needs root and loop devices)");
        return;
    };
    let dir = disk.mount_point.join("journal");
    let filler = disk.mount_point.join("filler");
    let clock = ManualClock::new(1_000);
    let (dir_again, clock_again) = (dir.clone(), clock.clone());
    let (sender, receiver) = std::sync::mpsc::channel();
    run(move || async move {
        let mut config = JournalConfig::new(&dir);
        config.segment_bytes_max = 4 << 20;
        let journal = Journal::open(config, Arc::new(clock.clone())).await.unwrap();
        journal.register_shard(spec(1));
        fill(&filler, 1 << 20);
        // Append until the disk is full.
        let mut acknowledged = Vec::new();
        let mut refused = None;
        for i in 0..10_000 {
            match journal.append(vec![record(i)]).await {
                Ok(_) => acknowledged.push(i),
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        let error = refused.expect("a 1 MiB gap fills up");
        assert!(matches!(error, EngineError::DiskFull { .. }), "{error:?}");
        assert!(error.to_string().contains("No space left on device"), "{error}");
        // Still full: refused again, and nothing of it is readable.
        assert!(journal.append(vec![record(99_999)]).await.is_err());
        let readable = read_all(&journal, 1, 0).await;
        assert_eq!(readable.len(), acknowledged.len(), "reads keep working and show exactly what was acknowledged");
        // Space returns; appends resume.
        std::fs::remove_file(&filler).unwrap();
        for i in 0..20 {
            journal.append(vec![record(50_000 + i)]).await.expect("appends resume once space returns");
            acknowledged.push(50_000 + i);
        }
        journal.close().await.unwrap();
        sender.send(acknowledged).unwrap();
    });
    let acknowledged = receiver.recv().unwrap();
    run(move || async move {
        let journal = Journal::open(JournalConfig::new(&dir_again), Arc::new(clock_again)).await.unwrap();
        journal.register_shard(spec(1));
        let records = read_all(&journal, 1, 0).await;
        let expected: Vec<Bytes> = acknowledged.iter().map(|&i| record(i).data).collect();
        let found: Vec<Bytes> = records.into_iter().map(|r| r.data).collect();
        assert_eq!(found.len(), expected.len());
        assert!(found == expected, "after a restart exactly the acknowledged records are there, in order");
        journal.close().await.unwrap();
    });
    drop(disk);
}
