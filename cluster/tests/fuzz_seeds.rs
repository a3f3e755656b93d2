//! The seed corpus of the `raft_log` fuzz target (fuzz/corpus/raft_log): Raft log files as the
//! replica writes them, whole, torn, overwritten and corrupted, and hard states. This test
//! checks that the committed seeds are what the current format writes and that the decoders
//! still judge each as expected; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-cluster --test
//! fuzz_seeds` rewrites them after a format change.
//!
//! A seed is the target's input: a mode byte (bit 0: the target fixes up frame checksums; bit 1:
//! the hard state decoder), then the file.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sluice_cluster::codec::{
    decode_hard_state, decode_log, encode_entry, encode_hard_state, HardStateRecord, LogDefect, LogEntry,
};

fn entry(index: u64, term: u64, entry_type: u8, data: &[u8]) -> LogEntry {
    LogEntry { index, term, entry_type, data: Bytes::copy_from_slice(data), context: Bytes::new() }
}

fn log(entries: &[LogEntry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        encode_entry(entry, &mut bytes);
    }
    bytes
}

fn with_mode(mode: u8, file: &[u8]) -> Vec<u8> {
    let mut seed = vec![mode];
    seed.extend_from_slice(file);
    seed
}

/// (name, seed, entries the log decoder keeps, why it stops), for the log seeds.
fn log_seeds() -> Vec<(&'static str, Vec<u8>, usize, LogDefect)> {
    let entries = [entry(1, 1, 0, b"first"), entry(2, 1, 0, &[7; 300]), entry(3, 2, 1, b"conf"), entry(4, 2, 0, b"")];
    let mut clean = log(&entries);
    let clean_len = clean.len();
    clean.resize(clean_len.next_multiple_of(512), 0);
    let torn = clean[..clean_len - 3].to_vec();
    let mut flipped = clean.clone();
    flipped[clean_len - 2] ^= 0x10;
    let overwritten = log(&[entry(1, 1, 0, b"a"), entry(2, 1, 0, b"b"), entry(3, 1, 0, b"c"), entry(2, 3, 0, b"B")]);
    let gap = log(&[entry(1, 1, 0, b"a"), entry(3, 1, 0, b"c")]);
    vec![
        ("log_clean", with_mode(0, &clean), 4, LogDefect::End),
        ("log_torn", with_mode(0, &torn), 3, LogDefect::Truncated),
        ("log_flipped", with_mode(0, &flipped), 3, LogDefect::Checksum),
        ("log_overwritten", with_mode(0, &overwritten), 2, LogDefect::End),
        ("log_gap", with_mode(1, &gap), 1, LogDefect::Gap { expected_max: 2, actual: 3 }),
    ]
}

fn check_seed(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    if std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(dir).expect("corpus directory");
        std::fs::write(&path, content).expect("seed written");
    } else {
        let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(committed, content, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
    }
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/raft_log")
}

#[test]
fn the_raft_log_seeds_are_current_and_decode_as_expected() {
    for (name, seed, kept, stop) in log_seeds() {
        let decoded = decode_log(&seed[1..]);
        assert_eq!((decoded.entries.len(), decoded.stop), (kept, stop), "{name}");
        check_seed(&corpus(), name, &seed);
    }
    let state = encode_hard_state(&HardStateRecord { term: 5, vote: 2, commit: 3 });
    assert!(decode_hard_state(&state).is_ok());
    check_seed(&corpus(), "state_valid", &with_mode(2, &state));
    let mut damaged = state;
    damaged[20] ^= 1;
    assert!(decode_hard_state(&damaged).is_err());
    check_seed(&corpus(), "state_damaged", &with_mode(2, &damaged));
}
