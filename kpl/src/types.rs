//! The small value types this crate speaks in: hash keys, shard ids, sequence numbers.
//!
//! They are deliberately plain. The workspace's one model crate (issue 11) will own the
//! newtypes every crate shares; when it lands these are meant to be replaced by its types (or
//! become re-exports of them). Each is a `Copy` newtype over an integer with a `FromStr` and
//! `Display` of the form Kinesis puts on the wire, so swapping them touches signatures only.

use md5::{Digest, Md5};
use std::fmt;
use std::str::FromStr;

/// A point of the 128-bit hash-key space: MD5 of a partition key read as an unsigned
/// big-endian integer, or an explicit hash key (KCL `AggregatorUtil.effectiveHashKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    pub const MIN: HashKey = HashKey(0);
    pub const MAX: HashKey = HashKey(u128::MAX);

    /// The hash key Kinesis routes a partition key by: MD5 over its UTF-8 bytes.
    pub fn from_partition_key(partition_key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
        HashKey(u128::from_be_bytes(digest))
    }

    /// The key a record routes by: its explicit hash key if it has one, else its partition key's.
    pub fn effective(partition_key: &str, explicit_hash_key: Option<HashKey>) -> HashKey {
        explicit_hash_key.unwrap_or_else(|| HashKey::from_partition_key(partition_key))
    }
}

/// A hash key that is not a decimal integer in `[0, 2^128-1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hash key must be a decimal integer in [0, 2^128-1] without leading zeros, got {text:?}")]
pub struct ParseHashKeyError {
    /// The first characters of the text, for the message.
    pub text: String,
}

impl FromStr for HashKey {
    type Err = ParseHashKeyError;

    /// Parses the decimal form Kinesis uses (`^(0|([1-9]\d{0,38}))$`, at most 2^128-1).
    fn from_str(text: &str) -> Result<HashKey, ParseHashKeyError> {
        let malformed = || ParseHashKeyError { text: text.chars().take(64).collect() };
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

/// An inclusive range of hash keys, `start <= end`, as ListShards reports a shard's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashKeyRange {
    pub start: HashKey,
    pub end: HashKey,
}

impl HashKeyRange {
    /// The whole space, `[0, 2^128-1]`.
    pub const ALL: HashKeyRange = HashKeyRange { start: HashKey::MIN, end: HashKey::MAX };

    pub fn contains(&self, key: HashKey) -> bool {
        self.start <= key && key <= self.end
    }
}

/// A shard, by the number in its Kinesis id `shardId-000000000042` (the KPL keeps the same
/// number: `ShardMap::shard_id_from_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u64);

/// A shard id not of the form `shardId-<digits>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard id must look like shardId-000000000000, got {text:?}")]
pub struct ParseShardIdError {
    pub text: String,
}

impl FromStr for ShardId {
    type Err = ParseShardIdError;

    fn from_str(text: &str) -> Result<ShardId, ParseShardIdError> {
        let error = || ParseShardIdError { text: text.chars().take(64).collect() };
        let digits = text.strip_prefix("shardId-").ok_or_else(error)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        digits.parse::<u64>().map(ShardId).map_err(|_| error())
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

/// A record's sequence number within its shard.
///
/// Sluice's sequence numbers fit 128 bits, and this type (like the model crate's) holds a
/// `u128`. AWS's own are 56-digit decimals (up to 188 bits) and do not fit: a driver talking
/// to AWS itself gets [`ParseSequenceNumberError`] from `from_str` for them. See the crate
/// docs' "Unfinished" list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber(pub u128);

/// A sequence number that is not a decimal integer fitting 128 bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sequence number must be a decimal integer below 2^128, got {text:?}")]
pub struct ParseSequenceNumberError {
    pub text: String,
}

impl FromStr for SequenceNumber {
    type Err = ParseSequenceNumberError;

    fn from_str(text: &str) -> Result<SequenceNumber, ParseSequenceNumberError> {
        let error = || ParseSequenceNumberError { text: text.chars().take(64).collect() };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        text.parse::<u128>().map(SequenceNumber).map_err(|_| error())
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_parse_like_kinesis() {
        assert_eq!("0".parse::<HashKey>(), Ok(HashKey(0)));
        assert_eq!(u128::MAX.to_string().parse::<HashKey>(), Ok(HashKey::MAX));
        for bad in ["", "01", "-1", "1.0", " 1", "340282366920938463463374607431768211456"] {
            assert!(bad.parse::<HashKey>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn partition_keys_hash_with_md5_big_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(HashKey::from_partition_key(""), HashKey(0xd41d8cd98f00b204e9800998ecf8427e));
        assert_eq!(HashKey::effective("a", Some(HashKey(7))), HashKey(7));
    }

    #[test]
    fn shard_ids_round_trip_the_kinesis_form() {
        assert_eq!("shardId-000000000042".parse::<ShardId>(), Ok(ShardId(42)));
        assert_eq!(ShardId(42).to_string(), "shardId-000000000042");
        for bad in ["", "shardId-", "shard-1", "shardId-x1", "shardId-99999999999999999999999"] {
            assert!(bad.parse::<ShardId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sequence_numbers_fit_128_bits_or_are_refused() {
        // An AWS sequence number (56 digits) does not fit.
        assert!("49590338271490256608559692538361571095921575989136588898".parse::<SequenceNumber>().is_err());
        assert_eq!(
            "1331398394219979422966694971397111809".parse::<SequenceNumber>(),
            Ok(SequenceNumber(1331398394219979422966694971397111809))
        );
    }
}
