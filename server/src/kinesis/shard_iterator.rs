//! Shard iterators: the opaque, tamper-evident, expiring tokens of GetShardIterator and
//! GetRecords.
//!
//! The daemon keeps no state per iterator. Everything GetRecords needs to continue a read is in
//! the token itself, authenticated with an HMAC under a key the daemon keeps in its data
//! directory ([`IteratorKey`]), so a token survives a restart, and a client can neither forge
//! one nor move an iterator to another shard or position.
//!
//! # Token layout
//!
//! A token is base64 (URL-safe alphabet, no padding) of these bytes, integers little-endian:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | version, [`ITERATOR_VERSION`] |
//! | 1 | 8 | `shard_uid` |
//! | 9 | 4 | `shard_number` |
//! | 13 | 8 | `record_index` |
//! | 21 | 8 | `issued_ms` (signed) |
//! | 29 | 1 | stream name length `n`, 1..=128 |
//! | 30 | `n` | stream name, UTF-8 |
//! | 30 + `n` | 16 | tag: HMAC-SHA256 over [`ITERATOR_MAC_DOMAIN`] and bytes 0..30 + `n`, first 16 bytes |
//!
//! The tag is truncated to 128 bits, half of SHA-256's output, the shortest RFC 2104 advises:
//! a forger still needs about 2^128 guesses, which no client can make against a daemon that
//! answers each one over the network, and the token stays a fifth shorter than with the full
//! 32 bytes. The key is used for nothing but iterators, and the domain string keeps these tags
//! apart from anything else the daemon might one day sign with a key derived the same way.
//!
//! # Errors
//!
//! [`decode`] checks, in this order: the token's length ([`IteratorError::Malformed`], before any
//! decoding, so a huge string costs nothing), base64 and version (`Malformed`), the tag
//! ([`IteratorError::Forged`], compared in constant time), the fields (`Malformed`, reachable
//! only with the key), and the age ([`IteratorError::Expired`]). The server answers
//! `InvalidArgumentException` for the first two and `ExpiredIteratorException` for the last.

pub use crate::limits::ITERATOR_LIFETIME_MS;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use sluice_model::limits::{
    NAME_CHARS_MAX as STREAM_NAME_CHARS_MAX, SHARD_ITERATOR_CHARS_MAX as KINESIS_SHARD_ITERATOR_CHARS_MAX,
};

/// The layout version in the first byte. A new layout takes a new version, so that tokens of
/// the old one are refused as malformed rather than misread.
pub const ITERATOR_VERSION: u8 = 1;

/// Bytes of the HMAC-SHA256 tag kept: 128 bits (see the module docs for why that is enough).
pub const ITERATOR_TAG_BYTES: usize = 16;

pub use sluice_engine::catalog::ITERATOR_KEY_BYTES;

/// Prefixed to the bytes an iterator tag covers, so that the tag means "a shard iterator".
pub const ITERATOR_MAC_DOMAIN: &[u8] = b"sluice shard iterator\0";

const VERSION_OFFSET: usize = 0;
const SHARD_UID_OFFSET: usize = 1;
const SHARD_NUMBER_OFFSET: usize = 9;
const RECORD_INDEX_OFFSET: usize = 13;
const ISSUED_MS_OFFSET: usize = 21;
const NAME_LEN_OFFSET: usize = 29;
const NAME_OFFSET: usize = 30;

/// Bytes before the stream name.
pub const ITERATOR_HEADER_BYTES: usize = NAME_OFFSET;

/// Bytes of the longest token before base64: a 128-character stream name.
pub const ITERATOR_BYTES_MAX: usize = ITERATOR_HEADER_BYTES + STREAM_NAME_CHARS_MAX + ITERATOR_TAG_BYTES;
/// Bytes of the shortest token before base64: a 1-character stream name.
pub const ITERATOR_BYTES_MIN: usize = ITERATOR_HEADER_BYTES + 1 + ITERATOR_TAG_BYTES;

/// Characters of the longest token; [`decode`] refuses longer strings before decoding them.
pub const ITERATOR_CHARS_MAX: usize = base64_chars(ITERATOR_BYTES_MAX);
/// Characters of the shortest token.
pub const ITERATOR_CHARS_MIN: usize = base64_chars(ITERATOR_BYTES_MIN);

const _: () = assert!(ISSUED_MS_OFFSET + 8 == NAME_LEN_OFFSET && NAME_LEN_OFFSET + 1 == NAME_OFFSET);
const _: () = assert!(RECORD_INDEX_OFFSET + 8 == ISSUED_MS_OFFSET && SHARD_NUMBER_OFFSET + 4 == RECORD_INDEX_OFFSET);
const _: () = assert!(SHARD_UID_OFFSET + 8 == SHARD_NUMBER_OFFSET && VERSION_OFFSET + 1 == SHARD_UID_OFFSET);
// The name length fits its one byte.
const _: () = assert!(STREAM_NAME_CHARS_MAX <= u8::MAX as usize);
// Every token is a valid Kinesis ShardIterator (232 characters at most).
const _: () = assert!(ITERATOR_CHARS_MAX <= KINESIS_SHARD_ITERATOR_CHARS_MAX);
const _: () = assert!(ITERATOR_TAG_BYTES * 2 >= ITERATOR_KEY_BYTES && ITERATOR_TAG_BYTES <= 32);

/// Characters of unpadded base64 for `bytes` bytes.
const fn base64_chars(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

type HmacSha256 = Hmac<Sha256>;

/// Where a read continues: the position a GetShardIterator or GetRecords call hands back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardIterator {
    pub stream_name: String,
    /// The shard's identity across the daemon's lifetime, so that an iterator of a deleted
    /// stream does not read a new stream of the same name.
    pub shard_uid: u64,
    /// The `n` of `shardId-n`.
    pub shard_number: u32,
    /// The index of the next record to read.
    pub record_index: u64,
    /// When the iterator was handed out, epoch milliseconds; it expires
    /// [`ITERATOR_LIFETIME_MS`] later.
    pub issued_ms: i64,
}

/// The secret that signs iterators. The daemon generates one on first start and keeps it in
/// its data directory, so that iterators stay valid across restarts.
///
/// Deliberately not `PartialEq`: comparing secrets with `==` is not constant-time.
#[derive(Clone)]
pub struct IteratorKey {
    bytes: [u8; ITERATOR_KEY_BYTES],
}

impl IteratorKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> IteratorKey {
        let mut bytes = [0; ITERATOR_KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        IteratorKey { bytes }
    }

    /// A key read back from the data directory.
    pub fn from_bytes(bytes: [u8; ITERATOR_KEY_BYTES]) -> IteratorKey {
        IteratorKey { bytes }
    }

    /// The key, to be written to the data directory.
    pub fn as_bytes(&self) -> &[u8; ITERATOR_KEY_BYTES] {
        &self.bytes
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes keys of any length");
        mac.update(ITERATOR_MAC_DOMAIN);
        mac
    }
}

/// Keeps the secret out of logs.
impl std::fmt::Debug for IteratorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorKey(..)")
    }
}

/// Why a token is not a valid iterator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IteratorError {
    /// Not a token of this daemon's layout: wrong length, bad base64, unknown version. Kinesis:
    /// `InvalidArgumentException`.
    #[error("shard iterator is malformed: {reason}")]
    Malformed { reason: &'static str },
    /// Well-formed, but the tag does not match: altered, or signed with another key. Kinesis:
    /// `InvalidArgumentException`.
    #[error("shard iterator is not one this server issued")]
    Forged,
    /// Genuine, but issued more than [`ITERATOR_LIFETIME_MS`] from now. Kinesis:
    /// `ExpiredIteratorException`.
    #[error(
        "shard iterator issued at {issued_ms} ms has expired at {now_ms} ms (lifetime {} ms)",
        ITERATOR_LIFETIME_MS
    )]
    Expired { issued_ms: i64, now_ms: i64 },
}

fn malformed(reason: &'static str) -> IteratorError {
    IteratorError::Malformed { reason }
}

/// The token for `iterator`, at most [`ITERATOR_CHARS_MAX`] characters of URL-safe base64.
///
/// # Panics
///
/// If the stream name is empty or longer than [`STREAM_NAME_CHARS_MAX`] bytes: the server
/// issues iterators only for streams that exist, whose names were validated at creation.
pub fn encode(iterator: &ShardIterator, key: &IteratorKey) -> String {
    let name = iterator.stream_name.as_bytes();
    assert!(
        (1..=STREAM_NAME_CHARS_MAX).contains(&name.len()),
        "stream name of {} bytes in a shard iterator",
        name.len()
    );
    let mut bytes = Vec::with_capacity(ITERATOR_BYTES_MAX);
    bytes.push(ITERATOR_VERSION);
    bytes.extend_from_slice(&iterator.shard_uid.to_le_bytes());
    bytes.extend_from_slice(&iterator.shard_number.to_le_bytes());
    bytes.extend_from_slice(&iterator.record_index.to_le_bytes());
    bytes.extend_from_slice(&iterator.issued_ms.to_le_bytes());
    bytes.push(u8::try_from(name.len()).expect("checked against STREAM_NAME_CHARS_MAX"));
    bytes.extend_from_slice(name);
    debug_assert_eq!(bytes.len(), NAME_OFFSET + name.len());
    let mut mac = key.mac();
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes()[..ITERATOR_TAG_BYTES]);
    let token = URL_SAFE_NO_PAD.encode(&bytes);
    assert!(token.len() <= ITERATOR_CHARS_MAX);
    token
}

/// The iterator `token` stands for, if this daemon issued it under `key` and it has not
/// expired at `now_ms`. Never panics, whatever the input.
///
/// An iterator expires once it is more than [`ITERATOR_LIFETIME_MS`] old: one exactly five
/// minutes old is still valid. One issued more than the lifetime in the future also counts as
/// expired; that happens only when the clock has been stepped back, and bounds how long any
/// token is honoured.
pub fn decode(token: &str, key: &IteratorKey, now_ms: i64) -> Result<ShardIterator, IteratorError> {
    let iterator = verified(token, key)?;
    let age_ms = now_ms.saturating_sub(iterator.issued_ms);
    if !(-ITERATOR_LIFETIME_MS..=ITERATOR_LIFETIME_MS).contains(&age_ms) {
        return Err(IteratorError::Expired { issued_ms: iterator.issued_ms, now_ms });
    }
    Ok(iterator)
}

/// The stream an iterator we signed was issued for, expired or not: what an authorizer checks
/// GetRecords against (an expired iterator is then refused as expired, not as denied).
pub fn stream_of(token: &str, key: &IteratorKey) -> Option<String> {
    verified(token, key).ok().map(|iterator| iterator.stream_name)
}

/// The iterator in `token` if we signed it, whatever its age.
fn verified(token: &str, key: &IteratorKey) -> Result<ShardIterator, IteratorError> {
    if token.len() > ITERATOR_CHARS_MAX {
        return Err(malformed("too long"));
    }
    if token.len() < ITERATOR_CHARS_MIN {
        return Err(malformed("too short"));
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed("not URL-safe base64"))?;
    if bytes.len() < ITERATOR_BYTES_MIN {
        return Err(malformed("too short"));
    }
    if bytes[VERSION_OFFSET] != ITERATOR_VERSION {
        return Err(malformed("unknown version"));
    }
    let (body, tag) = bytes.split_at(bytes.len() - ITERATOR_TAG_BYTES);
    let mut mac = key.mac();
    mac.update(body);
    mac.verify_truncated_left(tag).map_err(|_| IteratorError::Forged)?;

    // From here on the bytes are our own, so these checks fail only if the key was shared with
    // something that signs another layout; they still must not panic.
    let name_len = usize::from(body[NAME_LEN_OFFSET]);
    if body.len() != NAME_OFFSET + name_len || !(1..=STREAM_NAME_CHARS_MAX).contains(&name_len) {
        return Err(malformed("stream name length"));
    }
    let stream_name = std::str::from_utf8(&body[NAME_OFFSET..]).map_err(|_| malformed("stream name is not UTF-8"))?;
    let iterator = ShardIterator {
        stream_name: stream_name.to_owned(),
        shard_uid: u64::from_le_bytes(field(body, SHARD_UID_OFFSET)),
        shard_number: u32::from_le_bytes(field(body, SHARD_NUMBER_OFFSET)),
        record_index: u64::from_le_bytes(field(body, RECORD_INDEX_OFFSET)),
        issued_ms: i64::from_le_bytes(field(body, ISSUED_MS_OFFSET)),
    };
    Ok(iterator)
}

/// The `N` bytes at `offset` of a body already checked to hold the whole header.
fn field<const N: usize>(body: &[u8], offset: usize) -> [u8; N] {
    body[offset..offset + N].try_into().expect("the header is fixed-size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const BASE64_URL_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn key() -> IteratorKey {
        IteratorKey::from_bytes(*b"sluice test key, 32 bytes long!!")
    }

    fn iterator(stream_name: &str) -> ShardIterator {
        ShardIterator {
            stream_name: stream_name.to_owned(),
            shard_uid: 0x0123_4567_89ab_cdef,
            shard_number: 42,
            record_index: 1_000_000,
            issued_ms: T0,
        }
    }

    /// Signs arbitrary body bytes as `encode` would, to reach the checks after the tag.
    fn sign(body: &[u8], key: &IteratorKey) -> String {
        let mut mac = key.mac();
        mac.update(body);
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..ITERATOR_TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The seed corpus of the `shard_iterator` fuzz target (fuzz/corpus/shard_iterator): a
    /// mode byte, a clock, then a token (mode 0) or a token's unsigned bytes (mode 1), under the
    /// target's key. `SLUICE_WRITE_FUZZ_SEEDS=1` rewrites them after a layout change.
    #[test]
    fn the_committed_fuzz_seeds_match_the_layout() {
        let key = IteratorKey::from_bytes(*b"sluice fuzz key, 32 bytes long!!");
        let token = encode(&iterator("orders"), &key);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let unsigned = &bytes[..bytes.len() - ITERATOR_TAG_BYTES];
        let input = |mode: u8, now_ms: i64, rest: &[u8]| [&[mode][..], &now_ms.to_le_bytes(), rest].concat();
        let seeds = [
            ("token", input(0, T0, token.as_bytes())),
            ("signed_by_the_target", input(1, T0, unsigned)),
            ("expired", input(0, T0 + ITERATOR_LIFETIME_MS + 1, token.as_bytes())),
        ];
        assert_eq!(decode(&token, &key, T0), Ok(iterator("orders")));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/shard_iterator");
        let write = std::env::var_os("SLUICE_WRITE_FUZZ_SEEDS").is_some();
        if write {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (name, seed) in &seeds {
            let path = dir.join(name);
            if write {
                std::fs::write(&path, seed).unwrap();
            } else {
                let committed = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                assert_eq!(&committed, seed, "{} is stale: rerun with SLUICE_WRITE_FUZZ_SEEDS=1", path.display());
            }
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), seeds.len(), "{} holds other files", dir.display());
    }

    #[test]
    fn round_trips() {
        let longest = "s".repeat(STREAM_NAME_CHARS_MAX);
        for name in ["a", "orders", "my-stream_v2.0", longest.as_str()] {
            let it = iterator(name);
            assert_eq!(decode(&encode(&it, &key()), &key(), T0), Ok(it));
        }
        let extreme = ShardIterator {
            stream_name: "x".into(),
            shard_uid: u64::MAX,
            shard_number: u32::MAX,
            record_index: 0,
            issued_ms: -1,
        };
        assert_eq!(decode(&encode(&extreme, &key()), &key(), 0), Ok(extreme));
    }

    #[test]
    fn longest_token_fits_kinesis() {
        let token = encode(&iterator(&"s".repeat(STREAM_NAME_CHARS_MAX)), &key());
        assert_eq!(token.len(), ITERATOR_CHARS_MAX);
        assert_eq!(ITERATOR_CHARS_MAX, 232);
        assert!(token.len() <= KINESIS_SHARD_ITERATOR_CHARS_MAX);
        assert_eq!(encode(&iterator("s"), &key()).len(), ITERATOR_CHARS_MIN);
        assert!(token.bytes().all(|c| BASE64_URL_ALPHABET.as_bytes().contains(&c)));
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        // Names of three lengths, so the last base64 character carries 0, 2 and 4 unused bits.
        let others = BASE64_URL_ALPHABET.chars().chain(['=', '+', '/', ' ', '.', '\0', 'é']);
        let replacements: Vec<char> = others.collect();
        for name in ["a", "ab", "abc"] {
            let token = encode(&iterator(name), &key());
            for (i, original) in token.char_indices() {
                for &c in replacements.iter().filter(|&&c| c != original) {
                    let mut changed = token.clone();
                    changed.replace_range(i..i + 1, c.encode_utf8(&mut [0; 4]));
                    assert!(decode(&changed, &key(), T0).is_err(), "{name}: {changed:?} was accepted");
                }
                let mut shorter = token.clone();
                shorter.remove(i);
                assert!(decode(&shorter, &key(), T0).is_err(), "{name}: {shorter:?} was accepted");
            }
            for c in BASE64_URL_ALPHABET.chars() {
                assert!(decode(&format!("{token}{c}"), &key(), T0).is_err());
            }
        }
    }

    #[test]
    fn errors_are_typed() {
        let token = encode(&iterator("orders"), &key());
        let other_key = IteratorKey::from_bytes([7; ITERATOR_KEY_BYTES]);
        assert_eq!(decode(&token, &other_key, T0), Err(IteratorError::Forged));

        // A changed shard number, re-encoded as valid base64: forged.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[SHARD_NUMBER_OFFSET] ^= 1;
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode(&bytes), &key(), T0), Err(IteratorError::Forged));

        // Another version: malformed, whatever its tag.
        bytes[SHARD_NUMBER_OFFSET] ^= 1;
        bytes[VERSION_OFFSET] = 2;
        assert!(matches!(decode(&URL_SAFE_NO_PAD.encode(&bytes), &key(), T0), Err(IteratorError::Malformed { .. })));

        for bad in ["", "A", "!!!!", &format!("{token}="), &"A".repeat(ITERATOR_CHARS_MAX + 1)] {
            assert!(matches!(decode(bad, &key(), T0), Err(IteratorError::Malformed { .. })), "{bad:?}");
        }
        // A huge string is refused by its length alone.
        let huge = "A".repeat(10 << 20);
        assert_eq!(decode(&huge, &key(), T0), Err(IteratorError::Malformed { reason: "too long" }));
    }

    #[test]
    fn signed_garbage_is_malformed_not_a_panic() {
        let mut body = vec![ITERATOR_VERSION; NAME_OFFSET];
        body[NAME_LEN_OFFSET] = 3;
        body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
        let err = decode(&sign(&body, &key()), &key(), T0).unwrap_err();
        assert_eq!(err, IteratorError::Malformed { reason: "stream name is not UTF-8" });
        body[NAME_LEN_OFFSET] = 4;
        let err = decode(&sign(&body, &key()), &key(), T0).unwrap_err();
        assert_eq!(err, IteratorError::Malformed { reason: "stream name length" });
        body.truncate(NAME_OFFSET);
        body[NAME_LEN_OFFSET] = 0;
        assert!(matches!(decode(&sign(&body, &key()), &key(), T0), Err(IteratorError::Malformed { .. })));
    }

    #[test]
    fn expires_after_exactly_five_minutes() {
        let token = encode(&iterator("orders"), &key());
        assert!(decode(&token, &key(), T0 + ITERATOR_LIFETIME_MS).is_ok());
        assert_eq!(
            decode(&token, &key(), T0 + ITERATOR_LIFETIME_MS + 1),
            Err(IteratorError::Expired { issued_ms: T0, now_ms: T0 + ITERATOR_LIFETIME_MS + 1 })
        );
        // A clock stepped back by up to the lifetime keeps the iterator; further, it expires.
        assert!(decode(&token, &key(), T0 - ITERATOR_LIFETIME_MS).is_ok());
        assert!(matches!(decode(&token, &key(), T0 - ITERATOR_LIFETIME_MS - 1), Err(IteratorError::Expired { .. })));
        // Extreme clocks do not overflow.
        assert!(matches!(decode(&token, &key(), i64::MIN), Err(IteratorError::Expired { .. })));
        assert!(matches!(decode(&token, &key(), i64::MAX), Err(IteratorError::Expired { .. })));
    }

    #[test]
    fn keys_persist_and_stay_secret() {
        let key = IteratorKey::generate();
        assert_ne!(key.as_bytes(), IteratorKey::generate().as_bytes());
        let restored = IteratorKey::from_bytes(*key.as_bytes());
        let token = encode(&iterator("orders"), &key);
        assert_eq!(decode(&token, &restored, T0), Ok(iterator("orders")));
        assert_eq!(format!("{key:?}"), "IteratorKey(..)");
    }

    proptest! {
        #[test]
        fn round_trips_any_iterator(
            stream_name in "[a-zA-Z0-9_.-]{1,128}", shard_uid: u64, shard_number: u32, record_index: u64,
            issued_ms: i64, age_ms in -ITERATOR_LIFETIME_MS..=ITERATOR_LIFETIME_MS,
        ) {
            let it = ShardIterator { stream_name, shard_uid, shard_number, record_index, issued_ms };
            let token = encode(&it, &key());
            prop_assert!(token.len() <= ITERATOR_CHARS_MAX);
            let now_ms = issued_ms.saturating_add(age_ms);
            if now_ms.saturating_sub(issued_ms) == age_ms {
                prop_assert_eq!(decode(&token, &key(), now_ms), Ok(it));
            }
        }

        #[test]
        fn random_strings_never_panic(token in "\\PC{0,600}", now_ms: i64) {
            prop_assert!(decode(&token, &key(), now_ms).is_err());
        }

        #[test]
        fn random_base64_never_panics(token in "[A-Za-z0-9_-]{0,300}", now_ms: i64) {
            prop_assert!(decode(&token, &key(), now_ms).is_err());
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), now_ms: i64) {
            prop_assert!(decode(&URL_SAFE_NO_PAD.encode(&bytes), &key(), now_ms).is_err());
        }

        #[test]
        fn signed_random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..200), now_ms: i64) {
            // With a valid tag, decoding may succeed (a well-formed body) but must not panic,
            // and whatever it accepts must encode back to the same token.
            let token = sign(&body, &key());
            if let Ok(it) = decode(&token, &key(), now_ms) {
                prop_assert_eq!(encode(&it, &key()), token);
            }
        }
    }
}
