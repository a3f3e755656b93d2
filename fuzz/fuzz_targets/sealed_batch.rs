//! Sealed (encrypted) record batches as they come back from disk: the header parser and the
//! opener must answer Ok or Err on any bytes, never panic. The seeds are batches sealed under
//! the fixed key below (see security/tests/fuzz_seeds.rs), so the fuzzer starts from bytes
//! that open and explores the ways they stop opening.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_security::kms::{DataKey, DataKeyRing, SealedHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = SealedHeader::parse(data) {
        let mut ring = DataKeyRing::default();
        ring.insert(header.master_key_id, header.data_key_version, DataKey::from_bytes([0x5A; 32]));
        let _ = ring.open(b"fuzz context", data);
    }
});
