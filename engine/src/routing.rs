//! Partition keys to hash keys to shards, exactly as Kinesis routes them.
//!
//! A partition key is hashed with MD5 over its UTF-8 bytes and the digest read as an unsigned
//! big-endian 128-bit integer (KCL `AggregatorUtil.effectiveHashKey`). An explicit hash key, a
//! decimal string, overrides it. Each shard owns an inclusive range of that space.

use md5::{Digest, Md5};
use std::fmt;

/// A point of the 128-bit hash-key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashKeyError {
    #[error("hash key must be a decimal integer in [0, 2^128-1] without leading zeros, got {0:?}")]
    Malformed(String),
}

impl HashKey {
    pub const MIN: HashKey = HashKey(0);
    pub const MAX: HashKey = HashKey(u128::MAX);

    pub fn from_partition_key(partition_key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
        HashKey(u128::from_be_bytes(digest))
    }

    /// Parses the decimal form Kinesis uses (`^(0|([1-9]\d{0,38}))$`, at most 2^128-1).
    pub fn parse_decimal(text: &str) -> Result<HashKey, ParseHashKeyError> {
        let malformed = || ParseHashKeyError::Malformed(text.chars().take(64).collect());
        let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let leading_zero = text.len() > 1 && text.starts_with('0');
        if !digits_only || leading_zero {
            return Err(malformed());
        }
        text.parse::<u128>().map(HashKey).map_err(|_| malformed())
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An inclusive range of hash keys, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub start: HashKey,
    pub end: HashKey,
}

impl HashKeyRange {
    pub fn contains(&self, key: HashKey) -> bool {
        self.start <= key && key <= self.end
    }
}

/// Splits `[0, 2^128-1]` into `count` contiguous ranges the way Kinesis' CreateStream does:
/// range `i` starts at `i * floor(2^128 / count)` and the last one ends at `2^128-1`.
pub fn split_evenly(count: u32) -> Vec<HashKeyRange> {
    assert!(count > 0, "a stream has at least one shard");
    if count == 1 {
        return vec![HashKeyRange { start: HashKey::MIN, end: HashKey::MAX }];
    }
    let count = u128::from(count);
    // floor(2^128 / n) without overflowing: 2^128 = u128::MAX + 1.
    let carry = u128::from(u128::MAX % count == count - 1);
    let step = u128::MAX / count + carry;
    (0..count)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == count { u128::MAX } else { (i + 1) * step - 1 };
            HashKeyRange { start: HashKey(start), end: HashKey(end) }
        })
        .collect()
}

/// Finds the range holding `key` among ranges sorted by start that cover the space without
/// overlap (the open shards of a stream). O(log n).
pub fn find_range(ranges: &[HashKeyRange], key: HashKey) -> Option<usize> {
    let after = ranges.partition_point(|range| range.start <= key);
    let index = after.checked_sub(1)?;
    ranges[index].contains(key).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn md5_matches_known_digests() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e, MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
        let check = |key: &str, hex: &str| {
            assert_eq!(HashKey::from_partition_key(key).0, u128::from_str_radix(hex, 16).unwrap());
        };
        check("", "d41d8cd98f00b204e9800998ecf8427e");
        check("a", "0cc175b9c0f1b6a831c399e269772661");
    }

    #[test]
    fn parses_kinesis_decimal_hash_keys() {
        let max = "340282366920938463463374607431768211455";
        assert_eq!(HashKey::parse_decimal(max), Ok(HashKey::MAX));
        assert_eq!(HashKey::parse_decimal("0"), Ok(HashKey::MIN));
        for bad in ["", "-1", "01", "1.5", " 1", "340282366920938463463374607431768211456", "abc"] {
            assert!(HashKey::parse_decimal(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn splits_like_kinesis() {
        let two = split_evenly(2);
        assert_eq!(two[0].end.0, (1u128 << 127) - 1);
        assert_eq!(two[1].start.0, 1u128 << 127);
        // kinesalite's three-shard stream: 113427455640312821154458202477256070485 is 2^128/3.
        let three = split_evenly(3);
        assert_eq!(three[1].start.0, 113427455640312821154458202477256070485);
        assert_eq!(three[2].end, HashKey::MAX);
    }

    proptest! {
        #[test]
        fn even_split_is_contiguous_and_routes_every_key(count in 1u32..2000, key: u128) {
            let ranges = split_evenly(count);
            prop_assert_eq!(ranges.len(), count as usize);
            prop_assert_eq!(ranges[0].start, HashKey::MIN);
            prop_assert_eq!(ranges.last().unwrap().end, HashKey::MAX);
            for pair in ranges.windows(2) {
                prop_assert_eq!(pair[0].end.0 + 1, pair[1].start.0);
            }
            let index = find_range(&ranges, HashKey(key)).unwrap();
            prop_assert!(ranges[index].contains(HashKey(key)));
        }

        #[test]
        fn decimal_round_trips(key: u128) {
            prop_assert_eq!(HashKey::parse_decimal(&HashKey(key).to_string()), Ok(HashKey(key)));
        }
    }
}
