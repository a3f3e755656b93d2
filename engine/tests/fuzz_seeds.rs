//! The seed corpora of the engine's fuzz targets: `segment_scan` (fuzz/corpus/segment_scan:
//! segments as the journal writes them, whole, torn and corrupted) and `checkpoints`
//! (fuzz/corpus/checkpoints: index checkpoints and watermarks, valid and damaged). These
//! tests check that the committed seeds are what the current format writes and that the
//! decoders still judge each one as expected;
//! `SLUICE_WRITE_FUZZ_SEEDS=1 cargo test -p sluice-engine --test fuzz_seeds` rewrites them
//! after a format change.

use sluice_engine::format::{
    decode_segment_checkpoint, decode_watermarks, encode_segment_checkpoint, encode_watermarks, scan_segment,
    BatchWriter, RaftPosition, SegmentEnd, Watermark, Watermarks, BLOCK_BYTES, COMMIT_END, COMMIT_START,
    FILE_XXH3_BYTES,
};
use sluice_engine::shard_index::RunEntry;
use std::path::{Path, PathBuf};

/// Appends one batch of `(shard, first_index, records)` runs at the end of `segment`.
fn push_batch(segment: &mut Vec<u8>, flags: u16, runs: &[(u64, u64, &[&[u8]])]) {
    push_raft_batch(segment, flags, runs, None);
}

/// [`push_batch`], the runs carrying Raft position `raft` (a replicated shard's).
fn push_raft_batch(segment: &mut Vec<u8>, flags: u16, runs: &[(u64, u64, &[&[u8]])], raft: Option<RaftPosition>) {
    let mut writer = BatchWriter::new(vec![0u8; 64 * 1024]);
    for (shard, first_index, records) in runs {
        writer.begin_run(*shard, *first_index, 1_700_000_000_000, raft);
        for data in *records {
            writer.push_record(b"partition-key", data, 0);
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
    // A replicated shard's runs (format version 3) after a single node's (version 2).
    let mut raft = Vec::new();
    push_batch(&mut raft, whole_commit, &[(1, 1, &[b"first"])]);
    push_raft_batch(
        &mut raft,
        whole_commit,
        &[(2, 1, &[b"entry 7", b"of term 2"])],
        Some(RaftPosition { term: 2, index: 7 }),
    );
    push_raft_batch(&mut raft, COMMIT_START, &[(2, 3, &[&[0x5Au8; 300]])], Some(RaftPosition { term: 3, index: 8 }));
    push_raft_batch(&mut raft, COMMIT_END, &[(2, 4, &[b"split"])], Some(RaftPosition { term: 3, index: 8 }));
    // Entries without records: position-only runs between and after runs of records.
    let mut positions = Vec::new();
    push_raft_batch(&mut positions, whole_commit, &[(2, 1, &[b"entry 1"])], Some(RaftPosition { term: 1, index: 1 }));
    push_raft_batch(&mut positions, whole_commit, &[(2, 2, &[])], Some(RaftPosition { term: 2, index: 2 }));
    push_raft_batch(
        &mut positions,
        whole_commit,
        &[(2, 2, &[b"entry 3"]), (2, 3, &[])],
        Some(RaftPosition { term: 2, index: 3 }),
    );
    vec![
        ("clean", clean, "clean"),
        ("torn", torn, "torn"),
        ("corrupt", corrupt, "corrupt"),
        ("raft_positions", raft, "clean"),
        ("position_only_runs", positions, "clean"),
    ]
}

/// Writes `content` to `dir/name` when rewriting the corpus, else checks it matches.
fn check_seed(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    if std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&path, content).unwrap();
    } else {
        let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(committed, content, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
    }
}

/// Seeds of the `checkpoints` target: a mode byte (bit 0: the target appends the checksum;
/// bit 1: watermarks; bits 2..8: log2 of the checkpoint's segment size), then the file.
#[test]
fn the_committed_checkpoint_seeds_match_the_format() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/checkpoints");
    let run = |first_index, record_count, position| RunEntry {
        first_index,
        record_count,
        run_bytes: 48 + 40 * record_count,
        position,
        timestamp_ms: 1_700_000_000_000,
    };
    let base = 1 << 20;
    let runs = [(1, run(1, 2, base + 64)), (2, run(7, 1, base + 600)), (1, run(3, 4, base + 1024))];
    let checkpoint = encode_segment_checkpoint(base, &runs, &[]);
    // Segments of 2^20 bytes: mode bits 2..8 hold 20.
    let segment_mode = 20 << 2;
    assert_eq!(decode_segment_checkpoint(&checkpoint, base, 1 << 20).unwrap().runs.len(), 3);
    let raft = [(base + 600, RaftPosition { term: 2, index: 40 }), (base + 1024, RaftPosition { term: 3, index: 41 })];
    let raft_checkpoint = encode_segment_checkpoint(base, &runs, &raft);
    assert_eq!(decode_segment_checkpoint(&raft_checkpoint, base, 1 << 20).unwrap().raft, raft);
    // A position-only run (an entry without records) listed between two runs of records.
    let position_only = RunEntry { record_count: 0, run_bytes: 48, ..run(3, 0, base + 600) };
    let listed = [(1, run(1, 2, base + 64)), (1, position_only), (1, run(3, 4, base + 1024))];
    let positions =
        [(base + 600, RaftPosition { term: 2, index: 40 }), (base + 1024, RaftPosition { term: 2, index: 41 })];
    let position_only_checkpoint = encode_segment_checkpoint(base, &listed, &positions);
    assert_eq!(decode_segment_checkpoint(&position_only_checkpoint, base, 1 << 20).unwrap().runs, listed);
    let mut flipped = checkpoint.clone();
    flipped[20] ^= 0x08;
    assert!(decode_segment_checkpoint(&flipped, base, 1 << 20).is_err());
    let body = &checkpoint[..checkpoint.len() - FILE_XXH3_BYTES];

    let watermark = |next_index, trim_index| Watermark { next_index, trim_index, last_timestamp_ms: 1_700_000_000_000 };
    let watermarks: Watermarks =
        [(1, watermark(9, 3)), (2, watermark(8, 8)), (5, Watermark::forgotten())].into_iter().collect();
    let encoded = encode_watermarks(&watermarks);
    assert_eq!(decode_watermarks(&encoded).unwrap(), watermarks);
    let watermarks_body = &encoded[..encoded.len() - FILE_XXH3_BYTES];

    let seed = |mode: u8, file: &[u8]| [&[mode][..], file].concat();
    check_seed(&dir, "checkpoint", &seed(segment_mode, &checkpoint));
    check_seed(&dir, "checkpoint_body", &seed(segment_mode | 1, body));
    check_seed(&dir, "checkpoint_flipped", &seed(segment_mode, &flipped));
    check_seed(&dir, "checkpoint_raft_positions", &seed(segment_mode, &raft_checkpoint));
    check_seed(&dir, "checkpoint_position_only", &seed(segment_mode, &position_only_checkpoint));
    check_seed(&dir, "watermarks", &seed(2, &encoded));
    check_seed(&dir, "watermarks_body", &seed(3, watermarks_body));
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
