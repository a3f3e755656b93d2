//! The KPL aggregated record format: encoding with exact size accounting, and deaggregation
//! that survives any bytes.
//!
//! An aggregated Kinesis record's data is (amazon-kinesis-producer `aggregation-format.md`):
//!
//! ```text
//! F3 89 9A C2                      magic
//! AggregatedRecord (protobuf 2)    partition_key_table, explicit_hash_key_table, records
//! MD5 of the protobuf bytes        16 bytes
//! ```
//!
//! The messages are declared with `prost`'s derive (no `protoc`, no build script). Protobuf
//! writes fields in field-number order, as the KPL's C++ and aws-kinesis-agg's Python
//! serializers do, and the format has no repeated scalars, so "packed or not" never arises:
//! given the same tables and records, the bytes are identical (checked against aws-kinesis-agg
//! in `tests/interop.rs`).
//!
//! # Deaggregation rules
//!
//! The KCL (`AggregatorUtil.deaggregate`) and aws-kinesis-agg (`iter_deaggregate_records`)
//! agree, and this module follows them:
//! - data shorter than the magic, a different magic, nothing but a digest after the magic, a
//!   digest that does not match, or protobuf that does not parse (including a missing
//!   `required` field) mean "not an aggregate": the record is passed through whole
//!   ([`Deaggregated::Plain`]);
//! - an authentic aggregate (magic, digest and protobuf all good) whose sub-record points
//!   outside a key table is corrupt: both libraries deliver the sub-records before the bad one
//!   and log an error; here that is [`CorruptAggregate`], carrying those sub-records and a
//!   typed error, so the caller can do the same and count it.
//! - Sub-records get sub-sequence numbers 0, 1, 2… in order.
//!
//! Two deliberate differences, both for bytes no KPL writes: key-table strings must be UTF-8
//! (prost checks; such a record is passed through whole), and an explicit hash key must be a
//! decimal integer in `[0, 2^128-1]` (the KCL parses it with `BigInteger` and silently drops
//! the whole aggregate when it is out of range; here any bad one is a [`CorruptAggregate`]).

use crate::types::{HashKey, HashKeyRange};
use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use prost::encoding::encoded_len_varint;
use prost::Message;
use std::collections::HashMap;

/// The four bytes an aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The MD5 digest of the protobuf bytes that ends an aggregated record.
pub const DIGEST_BYTES: usize = 16;
/// Bytes an aggregate's data spends outside the protobuf message.
pub const AGGREGATE_OVERHEAD_BYTES: usize = MAGIC.len() + DIGEST_BYTES;
/// The partition key the KPL puts on an aggregated Kinesis record (`KinesisRecord::partition_key`):
/// one byte, because the aggregate is routed by its explicit hash key and every user record
/// inside carries its own partition key.
pub const AGGREGATE_PARTITION_KEY: &str = "a";

/// The protobuf messages, field for field as in the KPL's `messages.proto`.
///
/// `required` fields are declared `optional` here so that a decoded message tells whether they
/// were present: protobuf 2 parsers (Java's, Python's) refuse a message missing one, and so
/// must deaggregation. An `optional` field that is set encodes to the same bytes as a
/// `required` one.
pub mod message {
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AggregatedRecord {
        #[prost(string, repeated, tag = "1")]
        pub partition_key_table: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub explicit_hash_key_table: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        pub records: Vec<Record>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        /// `required uint64 partition_key_index = 1`
        #[prost(uint64, optional, tag = "1")]
        pub partition_key_index: Option<u64>,
        /// `optional uint64 explicit_hash_key_index = 2`
        #[prost(uint64, optional, tag = "2")]
        pub explicit_hash_key_index: Option<u64>,
        /// `required bytes data = 3`
        #[prost(bytes = "bytes", optional, tag = "3")]
        pub data: Option<Bytes>,
        #[prost(message, repeated, tag = "4")]
        pub tags: Vec<Tag>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tag {
        /// `required string key = 1`
        #[prost(string, optional, tag = "1")]
        pub key: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub value: Option<String>,
    }
}

/// Bytes a length-delimited field (string, bytes, message) of `len` bytes takes, tag included.
/// Every field number of the format is below 16, so every tag is one byte.
fn delimited_field_bytes(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes a varint field takes, tag included.
fn varint_field_bytes(value: u64) -> usize {
    1 + encoded_len_varint(value)
}

/// One aggregated record being filled, with its encoded size known exactly at every step.
///
/// The size is accounted as each record is added (the same arithmetic as the KPL's
/// `KinesisRecord` and aws-kinesis-agg's `_calculate_record_size`), so a caller can ask what a
/// record would cost before adding it and never overshoot a limit; [`finish`](Self::finish)
/// asserts the accounting against the bytes written.
#[derive(Debug, Default, Clone)]
pub struct AggregateBuilder {
    message: message::AggregatedRecord,
    partition_key_indexes: HashMap<String, u64>,
    explicit_hash_key_indexes: HashMap<HashKey, u64>,
    protobuf_bytes: usize,
    first_hash_key: Option<HashKey>,
}

impl AggregateBuilder {
    pub fn new() -> AggregateBuilder {
        AggregateBuilder::default()
    }

    /// User records added so far.
    pub fn len(&self) -> usize {
        self.message.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message.records.is_empty()
    }

    /// The routing key of the aggregate: the first user record's effective hash key, which the
    /// KPL sends as the aggregate's explicit hash key.
    pub fn hash_key(&self) -> Option<HashKey> {
        self.first_hash_key
    }

    /// Bytes of the aggregate's data (magic, protobuf, digest) as it stands; zero when empty.
    pub fn data_bytes(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            AGGREGATE_OVERHEAD_BYTES + self.protobuf_bytes
        }
    }

    /// Bytes of the aggregate's data if a record with these fields were added.
    pub fn data_bytes_with(&self, partition_key: &str, explicit_hash_key: Option<HashKey>, data_len: usize) -> usize {
        AGGREGATE_OVERHEAD_BYTES + self.protobuf_bytes + self.growth_bytes(partition_key, explicit_hash_key, data_len)
    }

    /// How many bytes the protobuf message grows by when the record is added.
    fn growth_bytes(&self, partition_key: &str, explicit_hash_key: Option<HashKey>, data_len: usize) -> usize {
        let mut growth = 0;
        let partition_key_index = match self.partition_key_indexes.get(partition_key) {
            Some(&index) => index,
            None => {
                growth += delimited_field_bytes(partition_key.len());
                self.message.partition_key_table.len() as u64
            }
        };
        let mut inner = varint_field_bytes(partition_key_index);
        if let Some(key) = explicit_hash_key {
            let index = match self.explicit_hash_key_indexes.get(&key) {
                Some(&index) => index,
                None => {
                    growth += delimited_field_bytes(decimal_len(key.0));
                    self.message.explicit_hash_key_table.len() as u64
                }
            };
            inner += varint_field_bytes(index);
        }
        inner += delimited_field_bytes(data_len);
        growth + delimited_field_bytes(inner)
    }

    /// Adds a user record. The caller checks sizes first with
    /// [`data_bytes_with`](Self::data_bytes_with).
    pub fn push(&mut self, partition_key: &str, explicit_hash_key: Option<HashKey>, data: Bytes) {
        self.protobuf_bytes += self.growth_bytes(partition_key, explicit_hash_key, data.len());
        let partition_key_index = match self.partition_key_indexes.get(partition_key) {
            Some(&index) => index,
            None => {
                let index = self.message.partition_key_table.len() as u64;
                self.message.partition_key_table.push(partition_key.to_owned());
                self.partition_key_indexes.insert(partition_key.to_owned(), index);
                index
            }
        };
        let explicit_hash_key_index = explicit_hash_key.map(|key| match self.explicit_hash_key_indexes.get(&key) {
            Some(&index) => index,
            None => {
                let index = self.message.explicit_hash_key_table.len() as u64;
                self.message.explicit_hash_key_table.push(key.to_string());
                self.explicit_hash_key_indexes.insert(key, index);
                index
            }
        });
        self.first_hash_key.get_or_insert_with(|| HashKey::effective(partition_key, explicit_hash_key));
        self.message.records.push(message::Record {
            partition_key_index: Some(partition_key_index),
            explicit_hash_key_index,
            data: Some(data),
            tags: Vec::new(),
        });
    }

    /// The aggregated record's data: magic, protobuf, MD5 digest.
    ///
    /// # Panics
    ///
    /// If the builder is empty (an aggregate of nothing is never sent), or if the size
    /// accounting disagrees with prost's encoding (a bug).
    pub fn finish(self) -> Bytes {
        assert!(!self.is_empty(), "an empty aggregate is never encoded");
        let protobuf_len = self.message.encoded_len();
        assert_eq!(protobuf_len, self.protobuf_bytes, "aggregate size accounting is off");
        let mut out = BytesMut::with_capacity(AGGREGATE_OVERHEAD_BYTES + protobuf_len);
        out.put_slice(&MAGIC);
        self.message.encode(&mut out).expect("the buffer was sized for the message");
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.put_slice(&digest);
        out.freeze()
    }
}

/// Digits in the decimal form of `value`.
fn decimal_len(value: u128) -> usize {
    if value == 0 {
        1
    } else {
        value.ilog10() as usize + 1
    }
}

/// One user record out of a Kinesis record: a sub-record of an aggregate, or a plain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord {
    pub partition_key: String,
    /// The explicit hash key the producer gave, if any.
    pub explicit_hash_key: Option<HashKey>,
    pub data: Bytes,
    /// The position inside its aggregate, 0 for the first.
    pub sub_sequence_number: u64,
}

impl SubRecord {
    /// The hash key this user record routes by.
    pub fn hash_key(&self) -> HashKey {
        HashKey::effective(&self.partition_key, self.explicit_hash_key)
    }
}

/// Why a Kinesis record is not taken as an aggregate (and so is passed through whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAggregated {
    /// Shorter than the magic, or nothing but a digest after it.
    TooShort,
    WrongMagic,
    DigestMismatch,
    /// The protobuf does not parse, or lacks a `required` field.
    BadProtobuf(String),
}

/// The outcome of deaggregating one Kinesis record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deaggregated {
    /// Not an aggregate: the record is a user record by itself.
    Plain(NotAggregated),
    /// The user records of an aggregate, in order.
    Aggregated(Vec<SubRecord>),
}

/// A sub-record of an authentic aggregate that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    #[error("sub-record {sub_sequence_number} has partition key index {index}, but the table has {table_len} keys")]
    PartitionKeyIndexOutOfRange { sub_sequence_number: u64, index: u64, table_len: usize },
    #[error(
        "sub-record {sub_sequence_number} has explicit hash key index {index}, but the table has {table_len} keys"
    )]
    ExplicitHashKeyIndexOutOfRange { sub_sequence_number: u64, index: u64, table_len: usize },
    #[error("sub-record {sub_sequence_number} has explicit hash key {text:?}, not a decimal integer in [0, 2^128-1]")]
    BadExplicitHashKey { sub_sequence_number: u64, text: String },
}

/// An authentic aggregate with an unreadable sub-record, and the sub-records before it (which
/// the KCL and aws-kinesis-agg deliver before logging the error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt KPL aggregate after {} good sub-records: {error}", records_before.len())]
pub struct CorruptAggregate {
    pub error: AggregateError,
    pub records_before: Vec<SubRecord>,
}

/// Splits a Kinesis record's data into its user records if it is a KPL aggregate.
///
/// Never panics, whatever the bytes (fuzzed by `fuzz/fuzz_targets/kpl_deaggregate.rs`).
pub fn deaggregate(data: &Bytes) -> Result<Deaggregated, CorruptAggregate> {
    if data.len() < MAGIC.len() || data.len() - MAGIC.len() <= DIGEST_BYTES {
        return Ok(Deaggregated::Plain(NotAggregated::TooShort));
    }
    if data[..MAGIC.len()] != MAGIC {
        return Ok(Deaggregated::Plain(NotAggregated::WrongMagic));
    }
    let protobuf = data.slice(MAGIC.len()..data.len() - DIGEST_BYTES);
    let digest: [u8; DIGEST_BYTES] = Md5::digest(&protobuf).into();
    if digest[..] != data[data.len() - DIGEST_BYTES..] {
        return Ok(Deaggregated::Plain(NotAggregated::DigestMismatch));
    }
    let message = match message::AggregatedRecord::decode(protobuf) {
        Ok(message) => message,
        Err(error) => return Ok(Deaggregated::Plain(NotAggregated::BadProtobuf(error.to_string()))),
    };
    if let Some(missing) = missing_required_field(&message) {
        return Ok(Deaggregated::Plain(NotAggregated::BadProtobuf(format!("missing required field {missing}"))));
    }
    let message::AggregatedRecord { partition_key_table, explicit_hash_key_table, records } = message;
    let mut out = Vec::with_capacity(records.len());
    for (sub_sequence_number, record) in (0u64..).zip(records) {
        match read_sub_record(&partition_key_table, &explicit_hash_key_table, record, sub_sequence_number) {
            Ok(sub_record) => out.push(sub_record),
            Err(error) => return Err(CorruptAggregate { error, records_before: out }),
        }
    }
    Ok(Deaggregated::Aggregated(out))
}

/// The first `required` field a parsed message lacks, as protobuf 2 parsers would refuse it.
fn missing_required_field(message: &message::AggregatedRecord) -> Option<&'static str> {
    for record in &message.records {
        if record.partition_key_index.is_none() {
            return Some("Record.partition_key_index");
        }
        if record.data.is_none() {
            return Some("Record.data");
        }
        if record.tags.iter().any(|tag| tag.key.is_none()) {
            return Some("Tag.key");
        }
    }
    None
}

fn read_sub_record(
    partition_keys: &[String],
    explicit_hash_keys: &[String],
    record: message::Record,
    sub_sequence_number: u64,
) -> Result<SubRecord, AggregateError> {
    let index = record.partition_key_index.unwrap_or_default();
    let partition_key = usize::try_from(index).ok().and_then(|i| partition_keys.get(i)).ok_or(
        AggregateError::PartitionKeyIndexOutOfRange { sub_sequence_number, index, table_len: partition_keys.len() },
    )?;
    let explicit_hash_key = match record.explicit_hash_key_index {
        None => None,
        Some(index) => {
            let text = usize::try_from(index).ok().and_then(|i| explicit_hash_keys.get(i)).ok_or(
                AggregateError::ExplicitHashKeyIndexOutOfRange {
                    sub_sequence_number,
                    index,
                    table_len: explicit_hash_keys.len(),
                },
            )?;
            Some(parse_lenient_hash_key(text).ok_or_else(|| AggregateError::BadExplicitHashKey {
                sub_sequence_number,
                text: text.chars().take(64).collect(),
            })?)
        }
    };
    Ok(SubRecord {
        partition_key: partition_key.clone(),
        explicit_hash_key,
        data: record.data.unwrap_or_default(),
        sub_sequence_number,
    })
}

/// A decimal hash key as the KCL reads one (`new BigInteger(text)`), leading zeros allowed,
/// but only values inside `[0, 2^128-1]`.
fn parse_lenient_hash_key(text: &str) -> Option<HashKey> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u128>().ok().map(HashKey)
}

/// Whether every sub-record routes into `range`. The KCL drops an aggregate whose
/// sub-records do not all belong to the shard it was read from (a producer with a stale shard
/// map sent it; the producer retries those user records, so keeping it would duplicate them).
pub fn all_in_range(records: &[SubRecord], range: HashKeyRange) -> bool {
    records.iter().all(|record| range.contains(record.hash_key()))
}

/// Encodes `records` (partition key, explicit hash key, data) as one aggregate, with no size
/// limit: a convenience for tests and tools; producers size aggregates with
/// [`AggregateBuilder`].
pub fn encode_aggregate<'a>(records: impl IntoIterator<Item = (&'a str, Option<HashKey>, Bytes)>) -> Bytes {
    let mut builder = AggregateBuilder::new();
    for (partition_key, explicit_hash_key, data) in records {
        builder.push(partition_key, explicit_hash_key, data);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(partition_key: &str, explicit_hash_key: Option<u128>, data: &[u8], sub: u64) -> SubRecord {
        SubRecord {
            partition_key: partition_key.to_owned(),
            explicit_hash_key: explicit_hash_key.map(HashKey),
            data: Bytes::copy_from_slice(data),
            sub_sequence_number: sub,
        }
    }

    /// Wraps protobuf bytes as an aggregate with a correct digest.
    fn wrap(protobuf: &[u8]) -> Bytes {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(protobuf);
        out.extend_from_slice(&Md5::digest(protobuf));
        Bytes::from(out)
    }

    #[test]
    fn round_trip_keeps_keys_hash_keys_data_and_order() {
        let data = encode_aggregate([
            ("alpha", None, Bytes::from_static(b"one")),
            ("beta", Some(HashKey(42)), Bytes::from_static(b"")),
            ("alpha", Some(HashKey(42)), Bytes::from_static(b"three")),
        ]);
        assert_eq!(data[..4], MAGIC);
        let expected =
            vec![user("alpha", None, b"one", 0), user("beta", Some(42), b"", 1), user("alpha", Some(42), b"three", 2)];
        assert_eq!(deaggregate(&data), Ok(Deaggregated::Aggregated(expected)));
    }

    #[test]
    fn known_bytes_match_the_kpl_layout() {
        // One record, key "k", data "d": tables then records, each field tag-length-value.
        let data = encode_aggregate([("k", None, Bytes::from_static(b"d"))]);
        let protobuf = &data[4..data.len() - 16];
        // 0x0a 01 'k' | 0x1a 05 [0x08 00 | 0x1a 01 'd']
        assert_eq!(protobuf, [0x0a, 0x01, b'k', 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, b'd']);
    }

    #[test]
    fn garbage_is_passed_through_as_kcl_does() {
        let good = encode_aggregate([("k", None, Bytes::from_static(b"d"))]);
        let check = |data: Bytes, expected: NotAggregated| {
            assert_eq!(deaggregate(&data), Ok(Deaggregated::Plain(expected)), "{data:?}");
        };
        check(Bytes::new(), NotAggregated::TooShort);
        check(Bytes::from_static(&MAGIC), NotAggregated::TooShort);
        check(wrap(&[]), NotAggregated::TooShort);
        check(Bytes::from_static(b"hello, world, a plain record"), NotAggregated::WrongMagic);
        let mut flipped = good.to_vec();
        flipped[6] ^= 1;
        check(Bytes::from(flipped), NotAggregated::DigestMismatch);
        let mut bad_digest = good.to_vec();
        *bad_digest.last_mut().unwrap() ^= 1;
        check(Bytes::from(bad_digest), NotAggregated::DigestMismatch);
        // A truncated varint.
        assert!(matches!(deaggregate(&wrap(&[0x1a, 0x80])), Ok(Deaggregated::Plain(NotAggregated::BadProtobuf(_)))));
        // A record without its required data field.
        assert!(matches!(
            deaggregate(&wrap(&[0x0a, 0x01, b'k', 0x1a, 0x02, 0x08, 0x00])),
            Ok(Deaggregated::Plain(NotAggregated::BadProtobuf(_)))
        ));
        // Invalid UTF-8 in the key table.
        assert!(matches!(
            deaggregate(&wrap(&[0x0a, 0x01, 0xff, 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, b'd'])),
            Ok(Deaggregated::Plain(NotAggregated::BadProtobuf(_)))
        ));
    }

    #[test]
    fn bad_indexes_are_errors_with_the_records_before() {
        // Record 0 fine, record 1 points at partition key 5 of 1.
        let protobuf =
            [0x0a, 0x01, b'k', 0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, b'd', 0x1a, 0x05, 0x08, 0x05, 0x1a, 0x01, b'e'];
        let error = deaggregate(&wrap(&protobuf)).unwrap_err();
        assert_eq!(error.records_before, vec![user("k", None, b"d", 0)]);
        assert_eq!(
            error.error,
            AggregateError::PartitionKeyIndexOutOfRange { sub_sequence_number: 1, index: 5, table_len: 1 }
        );
        // An explicit hash key index with no table.
        let protobuf = [0x0a, 0x01, b'k', 0x1a, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x01, b'd'];
        assert_eq!(
            deaggregate(&wrap(&protobuf)).unwrap_err().error,
            AggregateError::ExplicitHashKeyIndexOutOfRange { sub_sequence_number: 0, index: 0, table_len: 0 }
        );
        // An explicit hash key that is not a number.
        let protobuf = [0x0a, 0x01, b'k', 0x12, 0x01, b'x', 0x1a, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x01, b'd'];
        assert!(matches!(
            deaggregate(&wrap(&protobuf)).unwrap_err().error,
            AggregateError::BadExplicitHashKey { sub_sequence_number: 0, .. }
        ));
    }

    #[test]
    fn an_aggregate_of_nothing_yields_nothing_as_kcl_does() {
        // A key table but no records: authentic, parses, zero user records.
        assert_eq!(deaggregate(&wrap(&[0x0a, 0x01, b'k'])), Ok(Deaggregated::Aggregated(vec![])));
    }

    #[test]
    fn range_check_covers_every_sub_record() {
        let records = vec![user("k", Some(10), b"", 0), user("k", Some(20), b"", 1)];
        assert!(all_in_range(&records, HashKeyRange { start: HashKey(10), end: HashKey(20) }));
        assert!(!all_in_range(&records, HashKeyRange { start: HashKey(11), end: HashKey(20) }));
    }

    #[test]
    fn decimal_lengths() {
        for (value, len) in [(0u128, 1), (9, 1), (10, 2), (99, 2), (100, 3), (u128::MAX, 39)] {
            assert_eq!(decimal_len(value), len, "{value}");
            assert_eq!(value.to_string().len(), len);
        }
    }
}
