//! The HTTP API's document reader and shape checker on arbitrary bodies. The first byte picks
//! the operation, the rest is the body, read in both encodings. Reading answers a document or
//! an error, never a panic; a document encodes again and reads back the same (as bytes); the checker
//! answers Ok or AWS's error for any document, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_model::Operation;
use sluice_protocol::aws::{document, shapes, Encoding};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let operation = Operation::ALL[usize::from(selector) % Operation::ALL.len()];
    for encoding in [Encoding::Json, Encoding::Cbor] {
        let Ok(mut parsed) = document::decode(encoding, body) else { continue };
        let again = document::encode(encoding, &parsed);
        let reread = document::decode(encoding, &again).expect("what the reader accepted, re-encoded, reads");
        // Compared as bytes: a CBOR NaN is a value that equals nothing, itself included.
        assert_eq!(document::encode(encoding, &reread), again, "a document re-read");
        let _ = shapes::check(operation.name(), &mut parsed, encoding);
    }
});
