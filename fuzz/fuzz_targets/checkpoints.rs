//! The decoders of the small checksummed files recovery reads (format.rs, docs/format.md): a
//! sealed segment's index checkpoint (`*.idx`) and the watermarks, on arbitrary bytes (what a
//! crash or a bad disk may leave). They must refuse or accept without panicking, and whatever
//! they accept must be well formed and encode back to exactly the same bytes.
//!
//! Input: one mode byte, then the file. Random bytes almost never pass the trailing XXH3, so
//! when bit 0 of the mode is set the target appends a valid checksum itself: the structural
//! checks behind the checksum are fuzzed too. Bit 1 picks the watermarks decoder; bits 2..8
//! give the checkpoint's segment size as a power of two.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::format::{
    decode_segment_checkpoint, decode_watermarks, encode_segment_checkpoint, encode_watermarks, checkpoint_offset,
};
use xxhash_rust::xxh3::xxh3_64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    let mut bytes = file.to_vec();
    if mode & 1 == 1 {
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
    }
    if mode & 2 == 0 {
        // The base the file claims, so that the fuzzer gets past the base check.
        let at = checkpoint_offset::BASE;
        let base = bytes.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let segment_bytes = 1u64 << (mode >> 2);
        if let Ok(decoded) = decode_segment_checkpoint(&bytes, base, segment_bytes) {
            let end = u128::from(base) + u128::from(segment_bytes);
            let mut previous_end = u128::from(base);
            for (position, raft) in &decoded.raft {
                assert!(raft.index > 0, "an accepted Raft position has an index");
                assert!(decoded.runs.iter().any(|(_, run)| run.position == *position), "of a listed run");
            }
            for (_, run) in &decoded.runs {
                let start = u128::from(run.position);
                let positioned = decoded.raft.iter().any(|(position, _)| *position == run.position);
                assert!(run.record_count > 0 || positioned, "an accepted run holds records, or is position-only");
                assert!(start >= previous_end, "accepted runs are in order and apart");
                previous_end = start + u128::from(run.run_bytes);
                assert!(previous_end <= end, "accepted runs lie in the segment");
            }
            let encoded = encode_segment_checkpoint(base, &decoded.runs, &decoded.raft);
            assert_eq!(encoded, bytes, "an accepted checkpoint encodes back");
        }
    } else if let Ok(watermarks) = decode_watermarks(&bytes) {
        for watermark in watermarks.values() {
            assert!(watermark.is_forgotten() || watermark.trim_index <= watermark.next_index);
        }
        assert_eq!(encode_watermarks(&watermarks), bytes, "accepted watermarks encode back");
    }
});
