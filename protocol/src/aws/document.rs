//! The document model of a request body on its way from the wire (AWS JSON 1.1 or AWS CBOR
//! 1.1) to a typed [`sluice_model::Request`].
//!
//! A request body is parsed into a [`Value`] without knowing its shape: serde_json and ciborium
//! both drive the same [`Deserialize`] impl. The shape checker ([`super::shapes`]) then types
//! and validates it against the service model, normalising the two encodings as it goes (a JSON
//! blob is a base64 string, a CBOR blob a byte string; a JSON timestamp is epoch seconds, a
//! CBOR one epoch milliseconds). The checked document is then read into the model's input
//! type through serde again: a [`Value`] is a [`Deserializer`] (not human-readable, so blobs
//! come out as bytes without a copy and timestamps as milliseconds).
//!
//! [`encode`] writes a document back in either encoding (the fuzz target checks that what the
//! decoder accepts survives that); answers are written by serde from the model's types.

use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

/// Which of the two AWS encodings a request arrived in (and its response goes out in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-amz-json-1.1`: botocore, the AWS CLI, the JS and Go SDKs.
    Json,
    /// `application/x-amz-cbor-1.1`: the Java SDKs' default for Kinesis.
    Cbor,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/x-amz-json-1.1",
            Encoding::Cbor => "application/x-amz-cbor-1.1",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// A blob: decoded base64 (JSON) or a CBOR byte string.
    Blob(Bytes),
    /// A timestamp, in epoch milliseconds, after the shape checker has read one.
    Timestamp(i64),
    List(Vec<Value>),
    /// Members in the order they came; objects here are small, so lookups scan.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Member `name` of a map (the last one, if a document repeats a key, as JSON parsers do).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Map(members) => members.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value),
            _ => None,
        }
    }

    /// A short name of the kind of value, for SerializationException messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "BOOLEAN_VALUE",
            Value::Int(_) | Value::Float(_) => "NUMBER_VALUE",
            Value::Text(_) => "STRING_VALUE",
            Value::Blob(_) => "BLOB_VALUE",
            Value::Timestamp(_) => "TIMESTAMP_VALUE",
            Value::List(_) => "START_ARRAY",
            Value::Map(_) => "START_OBJECT",
        }
    }
}

/// Why a body could not be parsed at all: answered as SerializationException.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// Parses a request body. An empty body is an empty object, as botocore sends for operations
/// without members and as AWS accepts.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<Value, ParseError> {
    if body.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    let value = match encoding {
        // serde_json stops at 128 levels of nesting, so a hostile document cannot exhaust the stack.
        Encoding::Json => serde_json::from_slice::<Value>(body).map_err(|error| ParseError(error.to_string()))?,
        // ciborium likewise stops at 256 levels.
        Encoding::Cbor => ciborium::de::from_reader::<Value, _>(body).map_err(|error| ParseError(error.to_string()))?,
    };
    match value {
        Value::Map(_) => Ok(value),
        other => Err(ParseError(format!("Start of structure or map found where not expected ({})", other.kind()))),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or CBOR value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Int(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        // Beyond i64 no Kinesis member fits anyway; keep it as a number that no integer
        // member accepts.
        Ok(i64::try_from(value).map_or(Value::Float(value as f64), Value::Int))
    }

    fn visit_i128<E>(self, value: i128) -> Result<Value, E> {
        Ok(i64::try_from(value).map_or(Value::Float(value as f64), Value::Int))
    }

    fn visit_u128<E>(self, value: u128) -> Result<Value, E> {
        Ok(i64::try_from(value).map_or(Value::Float(value as f64), Value::Int))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::Text(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::Text(value))
    }

    fn visit_bytes<E>(self, value: &[u8]) -> Result<Value, E> {
        Ok(Value::Blob(Bytes::copy_from_slice(value)))
    }

    fn visit_byte_buf<E>(self, value: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Blob(Bytes::from(value)))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    /// ciborium hands a CBOR tag over as an enum: the tag number, then the tagged value. Tag 1
    /// (epoch time) holds epoch milliseconds in the AWS CBOR protocol; other tags are dropped
    /// and their value kept.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess as _;
        // ciborium's protocol: a variant named "@@TAGGED@@" holding the pair (tag, value).
        let (_, variant): (String, _) = data.variant()?;
        let (tag, inner) = variant.tuple_variant(2, TagVisitor)?;
        Ok(match (tag, inner) {
            (1, Value::Int(ms)) => Value::Timestamp(ms),
            (1, Value::Float(ms)) if ms.is_finite() && ms.abs() < 6.3e15 => Value::Timestamp(ms.round() as i64),
            (_, inner) => inner,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Size hints come from the sender: cap what is reserved up front.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut members = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
        while let Some(key) = access.next_key::<Value>()? {
            let Value::Text(key) = key else {
                return Err(de::Error::custom("object keys must be strings"));
            };
            members.push((key, access.next_value()?));
        }
        Ok(Value::Map(members))
    }
}

struct TagVisitor;

impl<'de> Visitor<'de> for TagVisitor {
    type Value = (u64, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CBOR tag and its value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(u64, Value), A::Error> {
        let tag = seq.next_element::<u64>()?.ok_or_else(|| de::Error::custom("tag without a number"))?;
        let value = seq.next_element::<Value>()?.ok_or_else(|| de::Error::custom("tag without a value"))?;
        Ok((tag, value))
    }
}

/// Writes a response document in `encoding`.
pub fn encode(encoding: Encoding, value: &Value) -> Vec<u8> {
    match encoding {
        Encoding::Json => serde_json::to_vec(&Encoded { value, encoding }).expect("a Value always serializes to JSON"),
        Encoding::Cbor => {
            let mut out = Vec::with_capacity(256);
            ciborium::ser::into_writer(&Encoded { value, encoding }, &mut out)
                .expect("a Value always serializes to CBOR in memory");
            out
        }
    }
}

struct Encoded<'a> {
    value: &'a Value,
    encoding: Encoding,
}

impl Serialize for Encoded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let nested = |value| Encoded { value, encoding: self.encoding };
        match self.value {
            Value::Null => serializer.serialize_none(),
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::Int(value) => serializer.serialize_i64(*value),
            Value::Float(value) => serializer.serialize_f64(*value),
            Value::Text(value) => serializer.serialize_str(value),
            Value::Blob(bytes) => match self.encoding {
                Encoding::Json => serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
                Encoding::Cbor => serializer.serialize_bytes(bytes),
            },
            // JSON: epoch seconds with the milliseconds as a fraction (what botocore sends and
            // reads); CBOR: tag 1 around epoch milliseconds (what the Java SDKs send and read).
            Value::Timestamp(ms) => match self.encoding {
                Encoding::Json => serializer.serialize_f64(*ms as f64 / 1000.0),
                Encoding::Cbor => ciborium::tag::Required::<i64, 1>(*ms).serialize(serializer),
            },
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&nested(item))?;
                }
                seq.end()
            }
            Value::Map(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, &nested(value))?;
                }
                map.end()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A checked document as a serde Deserializer, to read it into the model's types.

/// Why a checked document did not read into its input type: a bug of the shape checker or the
/// model (the checker is meant to let through only what reads), answered as
/// SerializationException.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(String);

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(message: T) -> ReadError {
        ReadError(message.to_string())
    }
}

impl<'de> de::IntoDeserializer<'de, ReadError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(value),
            Value::Int(value) => visitor.visit_i64(value),
            Value::Float(value) => visitor.visit_f64(value),
            Value::Text(value) => visitor.visit_string(value),
            // Hands the buffer over: `Vec::from(Bytes)` takes a uniquely held buffer (as a
            // decoded blob is) without a copy.
            Value::Blob(bytes) => visitor.visit_byte_buf(Vec::from(bytes)),
            Value::Timestamp(ms) => visitor.visit_i64(ms),
            Value::List(items) => {
                // A null inside a list is no item, as the shape checker skips it.
                let items: Vec<Value> = items.into_iter().filter(|item| !matches!(item, Value::Null)).collect();
                visitor.visit_seq(de::value::SeqDeserializer::<_, ReadError>::new(items.into_iter()))
            }
            Value::Map(members) => {
                // A key given twice counts once, with its last value, as `Value::get` reads it.
                let mut unique: Vec<(String, Value)> = Vec::with_capacity(members.len());
                for (key, value) in members.into_iter().rev() {
                    if !unique.iter().any(|(seen, _)| *seen == key) {
                        unique.push((key, value));
                    }
                }
                unique.reverse();
                let members = unique.into_iter().filter(|(_, value)| !matches!(value, Value::Null));
                visitor.visit_map(de::value::MapDeserializer::<_, ReadError>::new(members))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(value),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        match self {
            Value::Text(text) => visitor.visit_enum(de::value::StringDeserializer::<ReadError>::new(text)),
            other => Err(de::Error::custom(format!("{} is not an enum value", other.kind()))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_newtype_struct(self)
    }

    /// Checked documents are not human-readable: blobs are bytes, timestamps milliseconds.
    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_cbor_parse_to_the_same_document() {
        let json = br#"{"StreamName":"s","ShardCount":2,"Flag":true,"List":["a",1.5],"Nothing":null}"#;
        let parsed = decode(Encoding::Json, json).unwrap();
        let cbor = encode(Encoding::Cbor, &parsed);
        assert_eq!(decode(Encoding::Cbor, &cbor).unwrap(), parsed);
        assert_eq!(parsed.get("ShardCount"), Some(&Value::Int(2)));
        assert_eq!(parsed.get("Missing"), None);
        assert_eq!(decode(Encoding::Json, b"").unwrap(), Value::Map(Vec::new()));
    }

    #[test]
    fn garbage_and_non_objects_are_parse_errors() {
        for body in [&b"{"[..], b"[]", b"1", b"\"s\"", b"null", b"{\"a\":}", b"\xff\xfe"] {
            assert!(decode(Encoding::Json, body).is_err(), "{body:?}");
        }
        for body in [&b"\xff"[..], b"\x01", b"\xa1", b"\x9f\x01", b"\xbf\x01\x02"] {
            assert!(decode(Encoding::Cbor, body).is_err(), "{body:?}");
        }
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode(Encoding::Json, deep.as_bytes()).is_err());
        let deep_cbor: Vec<u8> = std::iter::once(0xa1u8)
            .chain(std::iter::once(0x61))
            .chain(std::iter::once(b'a'))
            .chain(std::iter::repeat_n(0x81u8, 100_000))
            .chain(std::iter::once(0x00))
            .collect();
        assert!(decode(Encoding::Cbor, &deep_cbor).is_err());
    }

    #[test]
    fn blobs_and_timestamps_render_per_encoding() {
        let doc = Value::Map(vec![
            ("Data".into(), Value::Blob(Bytes::from_static(b"hello"))),
            ("At".into(), Value::Timestamp(1_704_164_645_678)),
        ]);
        assert_eq!(
            String::from_utf8(encode(Encoding::Json, &doc)).unwrap(),
            r#"{"Data":"aGVsbG8=","At":1704164645.678}"#
        );
        let cbor = encode(Encoding::Cbor, &doc);
        let generic: ciborium::Value = ciborium::de::from_reader(&cbor[..]).unwrap();
        let members = generic.as_map().unwrap();
        assert_eq!(members[0].1, ciborium::Value::Bytes(b"hello".to_vec()));
        assert_eq!(
            members[1].1,
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_704_164_645_678i64.into())))
        );
    }

    /// Found by the `aws_shapes` fuzz target: a JSON number with more digits than an f64 holds
    /// re-read one bit off after encoding (serde_json's fast float parser is not exact without
    /// its `float_roundtrip` feature), so a document did not survive its own encoding.
    #[test]
    fn a_float_reads_back_exactly_after_encoding() {
        let body = br#"{"Limit":173333333333333333333333333333333333333304164645.678,"Again":1.7333333333333334e+41}"#;
        let parsed = decode(Encoding::Json, body).unwrap();
        let again = encode(Encoding::Json, &parsed);
        assert_eq!(decode(Encoding::Json, &again).unwrap(), parsed);
        assert_eq!(encode(Encoding::Json, &decode(Encoding::Json, &again).unwrap()), again);
    }
}
