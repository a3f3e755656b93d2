//! The small value types this crate speaks in: hash keys, shard ids, sequence numbers.
//!
//! [`HashKey`] and [`SequenceNumber`] are the model crate's (so a sequence number from AWS
//! itself, 56 digits, is held as it is). [`ShardId`] stays this crate's own: a `Copy` number
//! the producer's queues and the lease taker's tables are keyed by, where the model's is the
//! text on the wire; [`ShardId::to_model`] and `TryFrom<&model::ShardId>` convert at the edge.

use md5::{Digest, Md5};
use std::fmt;
use std::str::FromStr;

pub use sluice_model::{HashKey, ParseIdError, SequenceNumber};

/// Routing by partition key, which the model's [`HashKey`] leaves to whoever routes: the
/// producer predicts shards with it, the consumer checks aggregates against a shard's range.
pub trait HashKeyExt {
    /// The hash key Kinesis routes a partition key by: MD5 over its UTF-8 bytes, read as an
    /// unsigned big-endian integer.
    fn from_partition_key(partition_key: &str) -> HashKey;

    /// The key a record routes by: its explicit hash key if it has one, else its partition
    /// key's (KCL `AggregatorUtil.effectiveHashKey`).
    fn effective(partition_key: &str, explicit_hash_key: Option<HashKey>) -> HashKey;
}

impl HashKeyExt for HashKey {
    fn from_partition_key(partition_key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
        HashKey(u128::from_be_bytes(digest))
    }

    fn effective(partition_key: &str, explicit_hash_key: Option<HashKey>) -> HashKey {
        explicit_hash_key.unwrap_or_else(|| HashKey::from_partition_key(partition_key))
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

impl ShardId {
    /// The model's (wire) form of this id.
    pub fn to_model(self) -> sluice_model::ShardId {
        sluice_model::ShardId::from(self.to_string())
    }
}

impl TryFrom<&sluice_model::ShardId> for ShardId {
    type Error = ParseShardIdError;

    fn try_from(id: &sluice_model::ShardId) -> Result<ShardId, ParseShardIdError> {
        id.as_str().parse()
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
    fn aws_sequence_numbers_are_held_whole() {
        let aws = "49590338271490256608559692538361571095921575989136588898";
        assert_eq!(aws.parse::<SequenceNumber>().unwrap().to_string(), aws);
        assert!(aws.parse::<SequenceNumber>().unwrap() > SequenceNumber::new(u128::MAX));
    }
}
