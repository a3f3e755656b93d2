//! The HTTP API's body decoder (AWS JSON 1.1 and CBOR) on arbitrary bytes, in both encodings:
//! it must answer Ok or Err, never panic; whatever it accepts must encode again and decode.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The decoder is compiled in from the server's source rather than through the server crate,
// which would pull glommio and hyper into the sanitizer build. It depends only on serde,
// serde_json, ciborium, base64 and bytes.
#[path = "../../server/src/http/value.rs"]
#[allow(dead_code, reason = "the server's helpers for building responses are not fuzzed here")]
mod value;

use value::{decode, encode, Encoding};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Json, Encoding::Cbor] {
        if let Ok(parsed) = decode(encoding, data) {
            let again = encode(encoding, &parsed);
            decode(encoding, &again).expect("what the decoder accepted, re-encoded, decodes");
        }
    }
});
