//! Sequence numbers: unique and strictly increasing within a shard, and enough to find the
//! record again. The layout is specified byte by byte in `docs/format.md`.
//!
//! A sequence number is a 128-bit unsigned integer, rendered in decimal like Kinesis':
//!
//! | bits     | field        | meaning                                                     |
//! |----------|--------------|-------------------------------------------------------------|
//! | 127..120 | version      | layout version, 1                                           |
//! | 119..80  | shard epoch  | seconds since the Unix epoch when the shard was created,    |
//! |          |              | forced above its parents' so children sort after parents    |
//! | 79..48   | shard number | the `N` of `shardId-N`                                      |
//! | 47..0    | record index | position of the record in its shard, from 0, without gaps   |
//!
//! Version 1 puts the value in `[2^120, 2^121)`, so every rendering has exactly 37 digits and
//! decimal strings compare like the numbers. The shard fields let a server reject a sequence
//! number that belongs to another shard; the record index finds the record in the shard's
//! index with one binary search.

use crate::limits::RECORD_INDEX_MAX;
use std::fmt;

const VERSION: u128 = 1;
const VERSION_SHIFT: u32 = 120;
const EPOCH_SHIFT: u32 = 80;
const EPOCH_BITS: u32 = 40;
const SHARD_NUMBER_SHIFT: u32 = 48;
const RECORD_INDEX_BITS: u32 = 48;
const _: () = assert!(RECORD_INDEX_MAX == (1 << RECORD_INDEX_BITS) - 1);
const _: () = assert!(EPOCH_SHIFT + EPOCH_BITS == VERSION_SHIFT);
const _: () = assert!(SHARD_NUMBER_SHIFT + 32 == EPOCH_SHIFT);

/// Rendered length of every version-1 sequence number.
pub const SEQUENCE_NUMBER_DIGITS: usize = 37;

/// The part of a sequence number that names the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ShardSeqPrefix {
    pub epoch_s: u64,
    pub shard_number: u32,
}

impl ShardSeqPrefix {
    pub fn new(epoch_s: u64, shard_number: u32) -> ShardSeqPrefix {
        assert!(epoch_s < 1 << EPOCH_BITS, "shard epoch {epoch_s} overflows 40 bits");
        ShardSeqPrefix { epoch_s, shard_number }
    }

    pub fn sequence_number(self, record_index: u64) -> SequenceNumber {
        assert!(record_index <= RECORD_INDEX_MAX, "record index {record_index} overflows 48 bits");
        SequenceNumber(
            (VERSION << VERSION_SHIFT)
                | (u128::from(self.epoch_s) << EPOCH_SHIFT)
                | (u128::from(self.shard_number) << SHARD_NUMBER_SHIFT)
                | u128::from(record_index),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber(u128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSequenceNumberError {
    #[error("sequence number must be 1 to 128 decimal digits")]
    Malformed,
    #[error("sequence number is not one Sluice issued")]
    Foreign,
}

impl SequenceNumber {
    pub fn parse(text: &str) -> Result<SequenceNumber, ParseSequenceNumberError> {
        if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseSequenceNumberError::Malformed);
        }
        let value: u128 = text.parse().map_err(|_| ParseSequenceNumberError::Foreign)?;
        if value >> VERSION_SHIFT != VERSION {
            return Err(ParseSequenceNumberError::Foreign);
        }
        Ok(SequenceNumber(value))
    }

    pub fn shard_prefix(self) -> ShardSeqPrefix {
        ShardSeqPrefix {
            epoch_s: ((self.0 >> EPOCH_SHIFT) & ((1 << EPOCH_BITS) - 1)) as u64,
            shard_number: (self.0 >> SHARD_NUMBER_SHIFT) as u32,
        }
    }

    pub fn record_index(self) -> u64 {
        (self.0 as u64) & RECORD_INDEX_MAX
    }

    pub fn as_u128(self) -> u128 {
        self.0
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
    use proptest::prelude::*;

    #[test]
    fn renders_fixed_width() {
        let prefix = ShardSeqPrefix::new(1_795_000_000, 7);
        let first = prefix.sequence_number(0).to_string();
        let last = ShardSeqPrefix::new((1 << 40) - 1, u32::MAX).sequence_number(RECORD_INDEX_MAX);
        assert_eq!(first.len(), SEQUENCE_NUMBER_DIGITS);
        assert_eq!(last.to_string().len(), SEQUENCE_NUMBER_DIGITS);
        assert_eq!(ShardSeqPrefix::new(0, 0).sequence_number(0).to_string().len(), 37);
    }

    #[test]
    fn rejects_foreign_and_malformed() {
        assert_eq!(SequenceNumber::parse(""), Err(ParseSequenceNumberError::Malformed));
        assert_eq!(SequenceNumber::parse("12a"), Err(ParseSequenceNumberError::Malformed));
        let aws = "49590338271490256608559692538361571095921575989136588898";
        assert_eq!(SequenceNumber::parse(aws), Err(ParseSequenceNumberError::Foreign));
        assert_eq!(SequenceNumber::parse("1"), Err(ParseSequenceNumberError::Foreign));
    }

    proptest! {
        #[test]
        fn round_trips_and_orders(epoch in 0u64..(1 << 40), shard: u32, a in 0..=RECORD_INDEX_MAX, b in 0..=RECORD_INDEX_MAX) {
            let prefix = ShardSeqPrefix::new(epoch, shard);
            let (sa, sb) = (prefix.sequence_number(a), prefix.sequence_number(b));
            let parsed = SequenceNumber::parse(&sa.to_string()).unwrap();
            prop_assert_eq!(parsed, sa);
            prop_assert_eq!(parsed.shard_prefix(), prefix);
            prop_assert_eq!(parsed.record_index(), a);
            prop_assert_eq!(a.cmp(&b), sa.cmp(&sb));
            prop_assert_eq!(a.cmp(&b), sa.to_string().cmp(&sb.to_string()));
        }

        #[test]
        fn later_epochs_sort_after(epoch in 0u64..(1 << 40) - 1, s1: u32, s2: u32, a in 0..=RECORD_INDEX_MAX, b in 0..=RECORD_INDEX_MAX) {
            let parent = ShardSeqPrefix::new(epoch, s1).sequence_number(a);
            let child = ShardSeqPrefix::new(epoch + 1, s2).sequence_number(b);
            prop_assert!(parent < child);
        }
    }
}
