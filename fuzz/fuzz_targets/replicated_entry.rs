//! A replicated shard's Raft entry (`server/src/ops/cluster/entry.rs`) on arbitrary bytes: the
//! records (or the seal) or an error, never a panic, and an entry it accepts encodes back to the same bytes.
//! The entries come from the committed log, which peers wrote.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

// Compiled in from the server's source rather than through the server crate, which would pull
// glommio and hyper into the sanitizer build.
#[path = "../../server/src/ops/cluster/entry.rs"]
mod entry;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(decoded) = entry::decode(&bytes) {
        assert!(!decoded.records.is_empty());
        assert_eq!(entry::encode(decoded.arrival_ms, &decoded.records), bytes);
    }
    if let Ok(entry::ShardEntry::Seal) = entry::decode_shard_entry(&bytes) {
        assert_eq!(entry::encode_seal(), bytes);
    }
});
