//! The decoders of a replica's Raft files (cluster/src/codec.rs, docs/replication.md): the log
//! (`raft.log`, checksummed frames) and the hard state (`raft.state`), on arbitrary bytes, what a
//! crash or a bad disk may leave. They must never panic; what the log decoder keeps must be a
//! contiguous log that encodes back to frames decoding to the same entries, and a hard state
//! it accepts must encode back to exactly the same bytes.
//!
//! Input: one mode byte, then the file. Random bytes almost never pass a frame's XXH3, so when
//! bit 0 of the mode is set the target writes a valid checksum into every frame header it
//! walks over: the structural checks behind the checksum (lengths, entry type, index gaps) are
//! fuzzed too. Bit 1 picks the hard state decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::codec::{
    decode_hard_state, decode_log, encode_entry, encode_hard_state, FRAME_HEADER_BYTES, FRAME_SEED,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    let mut bytes = file.to_vec();
    if mode & 2 == 2 {
        if let Ok(state) = decode_hard_state(&bytes) {
            assert_eq!(encode_hard_state(&state)[..], bytes[..]);
        }
        return;
    }
    if mode & 1 == 1 {
        let mut at = 0;
        while at + FRAME_HEADER_BYTES <= bytes.len() {
            let payload_len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let start = at + FRAME_HEADER_BYTES;
            let Some(payload) = bytes.get(start..start + payload_len) else { break };
            if payload_len == 0 {
                break;
            }
            let checksum = xxh3_64_with_seed(payload, FRAME_SEED ^ payload_len as u64);
            bytes[at + 4..at + 12].copy_from_slice(&checksum.to_le_bytes());
            at = start + payload_len;
        }
    }
    let decoded = decode_log(&bytes);
    assert!(decoded.valid_bytes <= bytes.len());
    for (at, entry) in decoded.entries.iter().enumerate() {
        assert_eq!(entry.index, at as u64 + 1);
    }
    let mut encoded = Vec::new();
    for entry in &decoded.entries {
        encode_entry(entry, &mut encoded);
    }
    let again = decode_log(&encoded);
    assert_eq!(again.entries, decoded.entries);
    assert_eq!(again.valid_bytes, encoded.len());
});
