//! The kinds of identifier Kinesis has, each its own type: a shard id is not a stream name,
//! and a sequence number is not a hash key, even where both travel as strings.
//!
//! Numbers are numbers inside ([`SequenceNumber`] and [`HashKey`] hold a `u128`) and decimal
//! only where AWS's JSON protocol or a command line wants text. Names and ARNs stay the text
//! the client sent, so that a server can quote them back in its error messages; they are
//! parsed where they are used (see [`crate::identity`]).
//!
//! [`Timestamp`] is epoch milliseconds. On the wire it is what each format wants: fractional
//! epoch seconds in JSON, tag 1 around epoch milliseconds in CBOR (see [`Timestamp`]'s serde),
//! milliseconds on the native protocol.

use crate::limits::{HASH_KEY_DIGITS_MAX, SEQUENCE_NUMBER_DIGITS_MAX};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Text that is not a valid identifier of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}: {reason}")]
pub struct ParseIdError {
    /// The AWS shape name, e.g. `HashKey`.
    pub kind: &'static str,
    /// The text, shortened to 64 characters.
    pub value: String,
    pub reason: &'static str,
}

impl ParseIdError {
    fn new(kind: &'static str, value: &str, reason: &'static str) -> ParseIdError {
        ParseIdError { kind, value: value.chars().take(64).collect(), reason }
    }
}

/// Declares the traits every string-backed identifier has.
macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The text, as the client sent it or the server formed it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                $name(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name(text.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id! {
    /// A shard's id: `shardId-` and twelve digits for every shard Sluice creates
    /// ([`ShardId::from_number`]). Any text a client sends is kept, so that a server can say
    /// "Shard {id} ... does not exist" about it.
    ShardId
}

text_id! {
    /// A stream's ARN, `arn:aws:kinesis:<region>:<account>:stream/<name>`; see
    /// [`crate::Identity::stream_name_of`] for reading one.
    StreamArn
}

text_id! {
    /// An enhanced fan-out consumer's ARN,
    /// `arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<consumer>:<created epoch s>`.
    ConsumerArn
}

text_id! {
    /// The ARN of a taggable resource (TagResource and its siblings): a stream's or a
    /// consumer's.
    ResourceArn
}

/// Digits in a shard id's number part: `shardId-000000000007`.
const SHARD_ID_DIGITS: usize = 12;
/// Most digits accepted when reading a shard number (`shardId-` followed by 20 digits at most).
const SHARD_ID_DIGITS_MAX: usize = 20;

impl ShardId {
    /// `shardId-000000000007` for 7.
    pub fn from_number(number: u32) -> ShardId {
        ShardId(format!("shardId-{number:0width$}", width = SHARD_ID_DIGITS))
    }

    /// The `n` of `shardId-n`, if this is the id of a shard Sluice could have made.
    pub fn number(&self) -> Option<u32> {
        let digits = self.0.strip_prefix("shardId-")?;
        if digits.is_empty() || digits.len() > SHARD_ID_DIGITS_MAX || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers.

/// A record's sequence number: unique and increasing within its shard.
///
/// Every number Sluice issues fits 128 bits, and is held as a `u128` (the native protocol
/// carries it as 16 bytes). AWS's own numbers are longer (56 digits, about 186 bits); a client
/// talking to AWS, or a server quoting one back, keeps those as their canonical decimal text.
/// Numbers compare numerically either way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber(SequenceRepr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SequenceRepr {
    Compact(u128),
    /// Canonical decimal digits (no leading zero) of a number above `u128::MAX`.
    Decimal(Box<str>),
}

impl SequenceNumber {
    pub const fn new(value: u128) -> SequenceNumber {
        SequenceNumber(SequenceRepr::Compact(value))
    }

    /// The number, if it fits 128 bits (every number Sluice issues does).
    pub fn as_u128(&self) -> Option<u128> {
        match self.0 {
            SequenceRepr::Compact(value) => Some(value),
            SequenceRepr::Decimal(_) => None,
        }
    }
}

impl From<u128> for SequenceNumber {
    fn from(value: u128) -> SequenceNumber {
        SequenceNumber::new(value)
    }
}

impl FromStr for SequenceNumber {
    type Err = ParseIdError;

    /// Decimal digits, at most 129 (the `SequenceNumber` shape's pattern, whose leading-zero
    /// rule is the shape checker's to enforce; leading zeros are dropped here).
    fn from_str(text: &str) -> Result<SequenceNumber, ParseIdError> {
        let error = |reason| ParseIdError::new("SequenceNumber", text, reason);
        if text.is_empty() || text.len() > SEQUENCE_NUMBER_DIGITS_MAX {
            return Err(error("must be 1 to 129 decimal digits"));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("must be decimal digits"));
        }
        match text.parse::<u128>() {
            Ok(value) => Ok(SequenceNumber::new(value)),
            Err(_) => Ok(SequenceNumber(SequenceRepr::Decimal(text.trim_start_matches('0').into()))),
        }
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SequenceRepr::Compact(value) => write!(f, "{value}"),
            SequenceRepr::Decimal(digits) => f.write_str(digits),
        }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &SequenceNumber) -> Ordering {
        match (&self.0, &other.0) {
            (SequenceRepr::Compact(a), SequenceRepr::Compact(b)) => a.cmp(b),
            (SequenceRepr::Compact(_), SequenceRepr::Decimal(_)) => Ordering::Less,
            (SequenceRepr::Decimal(_), SequenceRepr::Compact(_)) => Ordering::Greater,
            // Canonical digits: the longer is larger, equal lengths compare as text.
            (SequenceRepr::Decimal(a), SequenceRepr::Decimal(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        }
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &SequenceNumber) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------------------------
// Hash keys.

/// A point of the 128-bit hash-key space: the MD5 of a partition key, or an explicit hash key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    pub const MIN: HashKey = HashKey(0);
    pub const MAX: HashKey = HashKey(u128::MAX);
}

impl From<u128> for HashKey {
    fn from(value: u128) -> HashKey {
        HashKey(value)
    }
}

impl FromStr for HashKey {
    type Err = ParseIdError;

    /// The decimal form Kinesis uses: `0|([1-9]\d{0,38})`, at most `2^128 - 1`.
    fn from_str(text: &str) -> Result<HashKey, ParseIdError> {
        let error = |reason| ParseIdError::new("HashKey", text, reason);
        if text.is_empty() || text.len() > HASH_KEY_DIGITS_MAX || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error("must be 1 to 39 decimal digits"));
        }
        if text.len() > 1 && text.starts_with('0') {
            return Err(error("must not have leading zeros"));
        }
        text.parse().map(HashKey).map_err(|_| error("must be at most 2^128 - 1"))
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Sequence numbers and hash keys are decimal strings in both AWS encodings.
macro_rules! decimal_serde {
    ($name:ident, $expecting:literal) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                struct DecimalVisitor;
                impl Visitor<'_> for DecimalVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$name, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(DecimalVisitor)
            }
        }
    };
}

decimal_serde!(SequenceNumber, "a sequence number in decimal");
decimal_serde!(HashKey, "a hash key in decimal");

// ---------------------------------------------------------------------------------------------
// Timestamps.

/// A point in time: milliseconds since the Unix epoch (before it, if negative).
///
/// Serialized as AWS's protocols want it: in JSON (a human-readable format) fractional epoch
/// seconds, `1704164645.678`, as botocore reads and writes them; in CBOR tag 1 around epoch
/// milliseconds, as the AWS SDKs for Java do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The largest timestamp magnitude a decoder accepts, in milliseconds: year ±200,000.
/// Anything further is not a date, and could not round-trip through the `f64` seconds of JSON.
pub const TIMESTAMP_MS_ABS_MAX: i64 = 6_300_000_000_000_000;

impl Timestamp {
    pub const fn from_epoch_ms(epoch_ms: i64) -> Timestamp {
        Timestamp(epoch_ms)
    }

    pub const fn epoch_ms(self) -> i64 {
        self.0
    }

    /// Seconds with the milliseconds as a fraction, as AWS's JSON protocol writes them.
    pub fn epoch_seconds(self) -> f64 {
        // Exact for every millisecond timestamp within ±2^53 ms (±285,000 years).
        self.0 as f64 / 1000.0
    }

    /// The current time, to the millisecond.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// A timestamp from milliseconds given as a float (CBOR) or seconds (JSON): `None` if it
    /// is no date.
    fn from_ms_f64(ms: f64) -> Option<Timestamp> {
        (ms.is_finite() && ms.abs() <= TIMESTAMP_MS_ABS_MAX as f64).then(|| Timestamp(ms.round() as i64))
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to whole milliseconds; saturates beyond ±2^63 ms.
    fn from(time: SystemTime) -> Timestamp {
        let epoch_ms = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        };
        Timestamp(epoch_ms)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(timestamp: Timestamp) -> SystemTime {
        let offset = Duration::from_millis(timestamp.0.unsigned_abs());
        if timestamp.0 >= 0 {
            UNIX_EPOCH + offset
        } else {
            UNIX_EPOCH - offset
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.epoch_seconds())
        } else {
            ciborium::tag::Required::<i64, 1>(self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        // JSON carries seconds; CBOR (and the shape checker's documents) milliseconds.
        let scale = if deserializer.is_human_readable() { 1000.0 } else { 1.0 };
        deserializer.deserialize_any(TimestampVisitor { scale })
    }
}

struct TimestampVisitor {
    /// Milliseconds per unit of the number read.
    scale: f64,
}

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp: epoch seconds (JSON) or tag 1 around epoch milliseconds (CBOR)")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Timestamp, E> {
        self.visit_f64(value as f64)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Timestamp, E> {
        self.visit_f64(value as f64)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Timestamp, E> {
        Timestamp::from_ms_f64(value * self.scale).ok_or_else(|| E::custom("timestamp out of range"))
    }

    /// ciborium hands a CBOR tag over as an enum holding the pair (tag, value).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Timestamp, A::Error> {
        use de::VariantAccess as _;
        let (_, variant): (de::IgnoredAny, _) = data.variant()?;
        variant.tuple_variant(2, TaggedVisitor)
    }
}

struct TaggedVisitor;

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tag 1 around epoch milliseconds")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Timestamp, A::Error> {
        let tag: u64 = seq.next_element()?.ok_or_else(|| de::Error::custom("a tag without its number"))?;
        if tag != 1 {
            return Err(de::Error::custom(format!("tag {tag} is not a timestamp")));
        }
        let Number(ms) = seq.next_element()?.ok_or_else(|| de::Error::custom("a tag without its value"))?;
        Timestamp::from_ms_f64(ms).ok_or_else(|| de::Error::custom("timestamp out of range"))
    }
}

/// Any number, as a float: CBOR's tag 1 holds an integer or a float.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Number, E> {
                Ok(Number(value as f64))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Number, E> {
                Ok(Number(value as f64))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Number, E> {
                Ok(Number(value))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Blobs.

/// Serde for blobs (`Data`): base64 text in JSON, a byte string in CBOR. Use with
/// `#[serde(with = "crate::ids::blob")]`.
pub mod blob {
    use base64::Engine as _;
    use bytes::Bytes;
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BlobVisitor { base64: true })
        } else {
            deserializer.deserialize_byte_buf(BlobVisitor { base64: false })
        }
    }

    struct BlobVisitor {
        base64: bool,
    }

    impl Visitor<'_> for BlobVisitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(if self.base64 { "base64 text" } else { "a byte string" })
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Bytes, E> {
            if !self.base64 {
                return Err(E::invalid_type(de::Unexpected::Str(text), &self));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| E::custom("a blob is not valid base64"))?;
            Ok(Bytes::from(decoded))
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(bytes))
        }

        /// An owned buffer (the shape checker's documents hand theirs over) becomes the blob
        /// without a copy.
        fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shard_ids_format_and_parse_strictly() {
        assert_eq!(ShardId::from_number(7), "shardId-000000000007");
        assert_eq!(ShardId::from("shardId-000000000007").number(), Some(7));
        assert_eq!(ShardId::from("shardId-7").number(), Some(7));
        for bad in ["", "shardId-", "7", "shardId-x", "shardId--1", "shardId-99999999999999999999999"] {
            assert_eq!(ShardId::from(bad).number(), None, "{bad}");
        }
    }

    #[test]
    fn sequence_numbers_of_any_length_compare_as_numbers() {
        let ours: SequenceNumber = "1331398394219979422966694971397111809".parse().unwrap();
        assert_eq!(ours.as_u128(), Some(1_331_398_394_219_979_422_966_694_971_397_111_809));
        let aws: SequenceNumber = "49590338271490256608559692538361571095921575989136588898".parse().unwrap();
        assert_eq!(aws.as_u128(), None);
        assert_eq!(aws.to_string(), "49590338271490256608559692538361571095921575989136588898");
        let larger: SequenceNumber = "49590338271490256608559692538361571095921575989136588899".parse().unwrap();
        assert!(ours < aws && aws < larger);
        assert_eq!("007".parse::<SequenceNumber>().unwrap(), SequenceNumber::new(7));
        for bad in ["", "12x", "-1", &"9".repeat(130)] {
            assert!(bad.parse::<SequenceNumber>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hash_keys_are_kinesis_decimals() {
        assert_eq!("0".parse::<HashKey>().unwrap(), HashKey::MIN);
        assert_eq!(u128::MAX.to_string().parse::<HashKey>().unwrap(), HashKey::MAX);
        let two_to_the_128 = "340282366920938463463374607431768211456";
        for bad in ["", "01", "-1", "1.5", two_to_the_128, "680564733841876926926749214863536422912"] {
            assert!(bad.parse::<HashKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_convert_to_seconds_and_system_time() {
        let timestamp = Timestamp::from_epoch_ms(1_704_164_645_678);
        assert_eq!(timestamp.epoch_seconds(), 1_704_164_645.678);
        assert_eq!(Timestamp::from(SystemTime::from(timestamp)), timestamp);
        let before_epoch = Timestamp::from_epoch_ms(-1_500);
        assert_eq!(Timestamp::from(SystemTime::from(before_epoch)), before_epoch);
        assert_eq!(before_epoch.epoch_seconds(), -1.5);
    }

    #[test]
    fn timestamps_are_seconds_in_json_and_tagged_milliseconds_in_cbor() {
        let timestamp = Timestamp::from_epoch_ms(1_704_164_645_678);
        assert_eq!(serde_json::to_string(&timestamp).unwrap(), "1704164645.678");
        assert_eq!(serde_json::from_str::<Timestamp>("1704164645.678").unwrap(), timestamp);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1704164645").unwrap(),
            Timestamp::from_epoch_ms(1_704_164_645_000)
        );
        assert!(serde_json::from_str::<Timestamp>("1e300").is_err());
        let mut cbor = Vec::new();
        ciborium::ser::into_writer(&timestamp, &mut cbor).unwrap();
        let generic: ciborium::Value = ciborium::de::from_reader(&cbor[..]).unwrap();
        assert_eq!(generic, ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_704_164_645_678i64.into()))));
        assert_eq!(ciborium::de::from_reader::<Timestamp, _>(&cbor[..]).unwrap(), timestamp);
        assert_eq!(Timestamp::from(SystemTime::from(timestamp)), timestamp);
        assert_eq!(Timestamp::from(SystemTime::from(Timestamp::from_epoch_ms(-1_500))).epoch_ms(), -1_500);
    }

    proptest! {
        #[test]
        fn decimals_round_trip(value: u128) {
            let sequence = SequenceNumber::new(value);
            prop_assert_eq!(sequence.to_string().parse::<SequenceNumber>().unwrap(), sequence.clone());
            prop_assert_eq!(serde_json::from_str::<SequenceNumber>(&serde_json::to_string(&sequence).unwrap()).unwrap(), sequence);
            prop_assert_eq!(HashKey(value).to_string().parse::<HashKey>().unwrap(), HashKey(value));
        }

        #[test]
        fn long_sequence_numbers_order_like_their_digits(a in "[1-9][0-9]{38,60}", b in "[1-9][0-9]{38,60}") {
            let (x, y): (SequenceNumber, SequenceNumber) = (a.parse().unwrap(), b.parse().unwrap());
            let numeric = a.len().cmp(&b.len()).then_with(|| a.cmp(&b));
            prop_assert_eq!(x.cmp(&y), numeric);
            prop_assert_eq!(x.to_string(), a);
        }
    }
}
