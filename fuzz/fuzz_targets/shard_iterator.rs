//! The shard-iterator decoder on arbitrary tokens: an iterator or an error, never a panic, and
//! an iterator it accepts is exactly what encoding that iterator writes. The first byte picks
//! the mode: even, the rest is the token; odd, the rest is a token's bytes, signed here with the
//! target's key, which reaches the checks only a key holder can (field layout, name, age). The
//! next 8 bytes, when there are that many, are the clock.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

// Compiled in from the server's source rather than through the server crate, which would pull
// glommio and hyper into the sanitizer build. `shard_iterator` reads `crate::limits`.
#[path = "../../server/src/limits.rs"]
#[allow(dead_code, reason = "only the iterator lifetime is used here")]
mod limits;
#[path = "../../server/src/kinesis/shard_iterator.rs"]
#[allow(dead_code, reason = "key generation and storage are not fuzzed here")]
mod shard_iterator;

use shard_iterator::{decode, encode, IteratorKey, ITERATOR_MAC_DOMAIN, ITERATOR_TAG_BYTES};

const KEY: [u8; 32] = *b"sluice fuzz key, 32 bytes long!!";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (now_ms, rest) = match rest.split_first_chunk::<8>() {
        Some((clock, rest)) => (i64::from_le_bytes(*clock), rest),
        None => (0, rest),
    };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).expect("HMAC takes keys of any length");
        mac.update(ITERATOR_MAC_DOMAIN);
        mac.update(rest);
        let mut bytes = rest.to_vec();
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..ITERATOR_TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let key = IteratorKey::from_bytes(KEY);
    if let Ok(iterator) = decode(&token, &key, now_ms) {
        assert_eq!(encode(&iterator, &key), token, "an accepted token is the encoding of what it decodes to");
    }
});
