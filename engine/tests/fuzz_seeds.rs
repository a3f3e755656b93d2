//! The seed corpus of the `segment_scan` fuzz target (fuzz/corpus/segment_scan): segments
//! as the journal writes them, whole, torn and corrupted. This test checks that the
//! committed seeds are what the current format writes and that the scanner still judges each
//! one as expected; `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-engine --test fuzz_seeds`
//! rewrites them after a format change.

use sluice_engine::format::{scan_segment, BatchWriter, SegmentEnd, BLOCK_BYTES, COMMIT_END, COMMIT_START};
use std::path::PathBuf;

/// Appends one batch of `(shard, first_index, records)` runs at the end of `segment`.
fn push_batch(segment: &mut Vec<u8>, flags: u16, runs: &[(u64, u64, &[&[u8]])]) {
    let mut writer = BatchWriter::new(vec![0u8; 64 * 1024]);
    for (shard, first_index, records) in runs {
        writer.begin_run(*shard, *first_index, 1_700_000_000_000);
        for data in *records {
            writer.push_record(b"partition-key", data);
        }
    }
    let position = segment.len() as u64;
    let (buffer, padded) = writer.finish(position, 1_700_000_000_000, flags, BLOCK_BYTES);
    segment.extend_from_slice(&buffer[..padded]);
}

fn seeds() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let whole_commit = COMMIT_START | COMMIT_END;
    let mut clean = Vec::new();
    push_batch(&mut clean, whole_commit, &[(1, 1, &[b"first", b"second"]), (2, 1, &[&[0u8; 300]])]);
    push_batch(&mut clean, COMMIT_START, &[(1, 3, &[b"third"])]);
    push_batch(&mut clean, COMMIT_END, &[(1, 4, &[&[0xFFu8; 700]]), (3, 1, &[b""])]);
    push_batch(&mut clean, whole_commit, &[]);

    let batches = scan_segment(&clean, 0).batches;
    // Cut inside the last batch of the two-batch commit: the whole commit is torn.
    let torn = clean[..batches[2].offset + 100].to_vec();
    // Flip a bit in the second batch's body: later commits exist, so this is corruption.
    let mut corrupt = clean.clone();
    corrupt[batches[1].offset + 100] ^= 0x04;
    vec![("clean", clean, "clean"), ("torn", torn, "torn"), ("corrupt", corrupt, "corrupt")]
}

#[test]
fn the_committed_seed_corpus_matches_the_format() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/segment_scan");
    let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
    for (name, segment, expected) in seeds() {
        let end = scan_segment(&segment, 0).end;
        let judged = match end {
            SegmentEnd::Clean => "clean",
            SegmentEnd::Torn { .. } => "torn",
            SegmentEnd::Corrupt { .. } => "corrupt",
        };
        assert_eq!(judged, expected, "{name}: {end:?}");
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &segment).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(committed, segment, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
        }
    }
}
