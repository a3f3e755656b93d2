//! Request checking against an AWS service model, as AWS does it.
//!
//! `kinesis-model.json` holds the request shapes of the operations Sluice serves, extracted
//! from botocore's copy of the AWS model by `scripts/kinesis-model.py` (which also checks that
//! the committed file is current); [`ServiceModel::kinesis`] is that model, parsed once. A
//! second service (Firehose) adds its own JSON and a constructor beside it. [`check`] walks a
//! parsed request against its operation's input shape and answers like the service:
//!
//! - a member of the wrong type (a string where an integer belongs, an invalid base64 blob) is
//!   `SerializationException`, at the first one found;
//! - a missing required member, a string too long or not matching its pattern, a number out of
//!   range, a value outside its enum, a list too long is `ValidationException`, all of them in
//!   one message: `2 validation errors detected: Value null at 'streamName' failed to satisfy
//!   constraint: Member must not be null; Value '0' at 'shardCount' ...`;
//! - members the model does not know are ignored, as AWS ignores them;
//! - a `HashKey` (a decimal the pattern limits to 39 digits) above 2^128 - 1 is
//!   `InvalidArgumentException` with AWS's "must be in the range" message, reported only
//!   when nothing else is wrong, as the service checks it after the shape.
//!
//! Checking also normalises the two encodings: JSON blobs (base64 text) become
//! [`Value::Blob`], and timestamps (JSON epoch seconds, CBOR epoch milliseconds) become
//! [`Value::Timestamp`] milliseconds, so the operations read one representation.

use super::document::{Encoding, Value};
use base64::Engine as _;
use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use sluice_model::{ErrorKind, KinesisError, Violation, Violations};
use std::collections::HashMap;
use std::sync::OnceLock;

const KINESIS_MODEL_JSON: &str = include_str!("kinesis-model.json");

/// The shape whose strings are hash keys (`HashKey`: `0|([1-9]\d{0,38})`), whose values must
/// also be at most 2^128 - 1.
const HASH_KEY_SHAPE: &str = "HashKey";

#[derive(Debug, Deserialize)]
struct RawModel {
    operations: HashMap<String, String>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Debug, Deserialize)]
struct RawRef {
    shape: String,
}

#[derive(Debug, Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: Vec<String>,
    /// `[name, shape]` pairs in the model's order.
    #[serde(default)]
    members: Vec<(String, String)>,
    member: Option<RawRef>,
    key: Option<RawRef>,
    value: Option<RawRef>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enumeration: Option<Vec<String>>,
}

#[derive(Debug)]
enum Kind {
    Structure { members: Vec<Member> },
    List { member: usize },
    Map { key: usize, value: usize },
    String { pattern: Option<(String, Regex)>, enumeration: Option<Vec<String>>, hash_key: bool },
    Integer,
    Long,
    Boolean,
    Blob,
    Timestamp,
}

#[derive(Debug)]
struct Member {
    name: String,
    /// The name in validation messages: AWS reports members in lower camel case.
    path_name: String,
    shape: usize,
    required: bool,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    min: Option<i64>,
    max: Option<i64>,
}

/// The request shapes of one AWS service, resolved to indexes.
#[derive(Debug)]
pub struct ServiceModel {
    operations: HashMap<String, usize>,
    shapes: Vec<Shape>,
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

impl ServiceModel {
    /// Kinesis' request shapes (embedded `kinesis-model.json`), parsed once per process.
    pub fn kinesis() -> &'static ServiceModel {
        static MODEL: OnceLock<ServiceModel> = OnceLock::new();
        MODEL.get_or_init(|| ServiceModel::parse(KINESIS_MODEL_JSON).expect("the embedded kinesis-model.json is valid"))
    }

    /// A model in the format `scripts/kinesis-model.py` writes.
    pub fn parse(json: &str) -> Result<ServiceModel, String> {
        let raw: RawModel = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut names: Vec<&String> = raw.shapes.keys().collect();
        names.sort();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
        let resolve = |name: &str| index.get(name).copied().ok_or_else(|| format!("unknown shape {name}"));
        let mut shapes = Vec::with_capacity(names.len());
        for name in &names {
            let raw_shape = &raw.shapes[*name];
            let reference = |r: &Option<RawRef>| {
                r.as_ref().ok_or_else(|| format!("{name} lacks a member shape")).and_then(|r| resolve(&r.shape))
            };
            let kind = match raw_shape.kind.as_str() {
                "structure" => {
                    let mut members = Vec::new();
                    for (member, shape) in &raw_shape.members {
                        members.push(Member {
                            name: member.clone(),
                            path_name: lower_camel(member),
                            shape: resolve(shape)?,
                            required: raw_shape.required.contains(member),
                        });
                    }
                    Kind::Structure { members }
                }
                "list" => Kind::List { member: reference(&raw_shape.member)? },
                "map" => Kind::Map { key: reference(&raw_shape.key)?, value: reference(&raw_shape.value)? },
                "string" => Kind::String {
                    pattern: match &raw_shape.pattern {
                        // Model patterns must match the whole value (Java's `matches`).
                        Some(pattern) => Some((
                            pattern.clone(),
                            Regex::new(&format!("^(?:{pattern})$")).map_err(|error| error.to_string())?,
                        )),
                        None => None,
                    },
                    enumeration: raw_shape.enumeration.clone(),
                    hash_key: name.as_str() == HASH_KEY_SHAPE,
                },
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "boolean" => Kind::Boolean,
                "blob" => Kind::Blob,
                "timestamp" => Kind::Timestamp,
                other => return Err(format!("{name}: unsupported shape type {other}")),
            };
            shapes.push(Shape { kind, min: raw_shape.min, max: raw_shape.max });
        }
        let operations = raw
            .operations
            .iter()
            .map(|(operation, input)| Ok((operation.clone(), resolve(input)?)))
            .collect::<Result<_, String>>()?;
        Ok(ServiceModel { operations, shapes })
    }

    pub fn has_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// How many operations the model has request shapes for.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }
}

/// Type-checks, normalises and validates `request` as the input of `operation` of Kinesis.
pub fn check(operation: &str, request: &mut Value, encoding: Encoding) -> Result<(), KinesisError> {
    check_against(ServiceModel::kinesis(), operation, request, encoding)
}

/// Type-checks, normalises and validates `request` as the input of `operation` of `model`.
pub fn check_against(
    model: &ServiceModel,
    operation: &str,
    request: &mut Value,
    encoding: Encoding,
) -> Result<(), KinesisError> {
    let Some(&input) = model.operations.get(operation) else {
        return Err(KinesisError::unknown_operation(operation));
    };
    let mut checker = Checker { model, encoding, violations: Violations::default(), argument: None };
    checker.walk(input, request, "")?;
    checker.violations.check()?;
    checker.argument.map_or(Ok(()), Err)
}

struct Checker<'m> {
    model: &'m ServiceModel,
    encoding: Encoding,
    violations: Violations,
    /// The first argument the model's constraints let through but the service refuses (a hash
    /// key above 2^128 - 1): reported only if no constraint was broken.
    argument: Option<KinesisError>,
}

fn serialization(message: String) -> KinesisError {
    KinesisError::new(ErrorKind::Serialization, message)
}

/// `ExplicitHashKey` from the path `records.3.member.explicitHashKey`.
fn member_name(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    let mut chars = last.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

impl Checker<'_> {
    fn length(&mut self, shape: &Shape, length: usize, shown: &str, path: &str) {
        if let Some(min) = shape.min.filter(|&min| (length as i64) < min) {
            self.violations.push(Violation::min_length(shown, path, min));
        }
        if let Some(max) = shape.max.filter(|&max| (length as i64) > max) {
            self.violations.push(Violation::max_length(shown, path, max));
        }
    }

    fn walk(&mut self, shape_index: usize, value: &mut Value, path: &str) -> Result<(), KinesisError> {
        let model = self.model;
        let shape = &model.shapes[shape_index];
        let mismatch = |value: &Value, wanted: &str| {
            serialization(format!("{} can not be converted to {wanted} (at '{path}')", value.kind()))
        };
        match &shape.kind {
            Kind::Structure { members } => {
                let Value::Map(fields) = value else { return Err(mismatch(value, "a structure")) };
                for member in members {
                    let member_path =
                        if path.is_empty() { member.path_name.clone() } else { format!("{path}.{}", member.path_name) };
                    // A repeated key: the last one counts, as in `Value::get`.
                    match fields.iter_mut().rev().find(|(key, _)| *key == member.name) {
                        Some((_, Value::Null)) | None => {
                            if member.required {
                                self.violations.push(Violation::null(&member_path));
                            }
                        }
                        Some((_, field)) => self.walk(member.shape, field, &member_path)?,
                    }
                }
            }
            Kind::List { member } => {
                let Value::List(items) = value else { return Err(mismatch(value, "a list")) };
                let count = items.len();
                for (i, item) in items.iter_mut().enumerate() {
                    if !matches!(item, Value::Null) {
                        self.walk(*member, item, &format!("{path}.{}.member", i + 1))?;
                    }
                }
                self.length(shape, count, &format!("[{count} items]"), path);
            }
            Kind::Map { key, value: value_shape } => {
                let Value::Map(entries) = value else { return Err(mismatch(value, "a map")) };
                let count = entries.len();
                for (entry_key, entry_value) in entries.iter_mut() {
                    let mut key_value = Value::Text(entry_key.clone());
                    self.walk(*key, &mut key_value, &format!("{path}.key"))?;
                    if !matches!(entry_value, Value::Null) {
                        self.walk(*value_shape, entry_value, &format!("{path}.value"))?;
                    }
                }
                self.length(shape, count, &format!("{{{count} entries}}"), path);
            }
            Kind::String { pattern, enumeration, hash_key } => {
                let Value::Text(text) = value else { return Err(mismatch(value, "a String")) };
                let text = text.as_str();
                if let Some(allowed) = enumeration {
                    if !allowed.iter().any(|option| option == text) {
                        self.violations.push(Violation::enumeration(text, path, allowed.iter().map(String::as_str)));
                    }
                }
                self.length(shape, text.chars().count(), text, path);
                let mut matched = true;
                if let Some((source, regex)) = pattern {
                    if !regex.is_match(text) {
                        matched = false;
                        self.violations.push(Violation::pattern(text, path, source));
                    }
                }
                if *hash_key && matched && self.argument.is_none() && text.parse::<sluice_model::HashKey>().is_err() {
                    self.argument = Some(KinesisError::invalid_hash_key(&member_name(path), text));
                }
            }
            Kind::Integer | Kind::Long => {
                let number = match *value {
                    Value::Int(number) => number,
                    Value::Float(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => number as i64,
                    _ => return Err(mismatch(value, "an Integer")),
                };
                if matches!(shape.kind, Kind::Integer) && i32::try_from(number).is_err() {
                    return Err(serialization(format!("Number {number} at '{path}' does not fit an Integer")));
                }
                *value = Value::Int(number);
                if let Some(min) = shape.min.filter(|&min| number < min) {
                    self.violations.push(Violation::min_value(number, path, min));
                }
                if let Some(max) = shape.max.filter(|&max| number > max) {
                    self.violations.push(Violation::max_value(number, path, max));
                }
            }
            Kind::Boolean => {
                if !matches!(value, Value::Bool(_)) {
                    return Err(mismatch(value, "a Boolean"));
                }
            }
            Kind::Blob => {
                let bytes = match (value as &Value, self.encoding) {
                    (Value::Blob(bytes), _) => bytes.clone(),
                    (Value::Text(text), Encoding::Json) => {
                        let decoded = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| {
                            serialization(format!("Base64 encoded value at '{path}' is not valid base64"))
                        })?;
                        Bytes::from(decoded)
                    }
                    _ => return Err(mismatch(value, "a Blob")),
                };
                self.length(shape, bytes.len(), &format!("[{} bytes]", bytes.len()), path);
                *value = Value::Blob(bytes);
            }
            Kind::Timestamp => {
                // JSON carries epoch seconds (botocore sends `1704164645.678`); CBOR carries
                // epoch milliseconds under tag 1 (the Java SDKs), which arrive as a plain number.
                let scale = match self.encoding {
                    Encoding::Json => 1000.0,
                    Encoding::Cbor => 1.0,
                };
                let ms = match *value {
                    Value::Int(number) => number as f64 * scale,
                    Value::Float(number) => number * scale,
                    Value::Timestamp(ms) => ms as f64,
                    _ => return Err(mismatch(value, "a Timestamp")),
                };
                // Year ±200,000 at most: anything else is not a date.
                if !ms.is_finite() || ms.abs() > 6.3e15 {
                    return Err(serialization(format!("Timestamp at '{path}' is out of range")));
                }
                *value = Value::Timestamp(ms.round() as i64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::document::decode;
    use proptest::strategy::Strategy as _;
    use sluice_model::Operation;

    fn checked(operation: &str, json: &str) -> Result<Value, KinesisError> {
        let mut value = decode(Encoding::Json, json.as_bytes()).unwrap();
        check(operation, &mut value, Encoding::Json).map(|()| value)
    }

    fn kind(operation: &str, json: &str) -> ErrorKind {
        checked(operation, json).unwrap_err().kind
    }

    #[test]
    fn the_embedded_model_covers_every_operation_served() {
        let model = ServiceModel::kinesis();
        for operation in Operation::ALL {
            assert!(model.has_operation(operation.name()), "{operation}");
        }
        assert_eq!(model.operation_count(), Operation::ALL.len());
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        assert_eq!(kind("CreateStream", r#"{"StreamName":"s","ShardCount":"2"}"#), ErrorKind::Serialization);
        assert_eq!(kind("CreateStream", r#"{"StreamName":5,"ShardCount":2}"#), ErrorKind::Serialization);
        assert_eq!(kind("CreateStream", r#"{"StreamName":"s","ShardCount":1.5}"#), ErrorKind::Serialization);
        assert_eq!(kind("CreateStream", r#"{"StreamName":"s","ShardCount":4294967296}"#), ErrorKind::Serialization);
        assert_eq!(kind("PutRecord", r#"{"StreamName":"s","Data":"!!","PartitionKey":"k"}"#), ErrorKind::Serialization);
        assert_eq!(kind("PutRecords", r#"{"StreamName":"s","Records":{}}"#), ErrorKind::Serialization);
        assert_eq!(
            kind("DeleteStream", r#"{"StreamName":"s","EnforceConsumerDeletion":"yes"}"#),
            ErrorKind::Serialization
        );
        assert_eq!(
            kind(
                "GetShardIterator",
                r#"{"StreamName":"s","ShardId":"x","ShardIteratorType":"AT_TIMESTAMP","Timestamp":"today"}"#
            ),
            ErrorKind::Serialization
        );
    }

    #[test]
    fn constraints_are_validation_errors_listed_together() {
        let error = checked("CreateStream", r#"{"ShardCount":0}"#).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        assert_eq!(
            error.message,
            "2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null; \
             Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert_eq!(kind("CreateStream", r#"{"StreamName":"a b","ShardCount":1}"#), ErrorKind::Validation);
        assert_eq!(
            kind("CreateStream", &format!(r#"{{"StreamName":"{}","ShardCount":1}}"#, "x".repeat(129))),
            ErrorKind::Validation
        );
        assert_eq!(
            kind("GetShardIterator", r#"{"StreamName":"s","ShardId":"x","ShardIteratorType":"OLDEST"}"#),
            ErrorKind::Validation
        );
        assert_eq!(kind("PutRecord", r#"{"StreamName":"s","Data":"","PartitionKey":""}"#), ErrorKind::Validation);
        assert_eq!(
            kind("PutRecord", r#"{"StreamName":"s","Data":"","PartitionKey":"k","ExplicitHashKey":"-1"}"#),
            ErrorKind::Validation
        );
        assert_eq!(kind("PutRecords", r#"{"StreamName":"s","Records":[]}"#), ErrorKind::Validation);
        assert_eq!(kind("GetRecords", r#"{"ShardIterator":"x","Limit":10001}"#), ErrorKind::Validation);
        let nested = checked(
            "PutRecords",
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k"},{"Data":"","PartitionKey":""}]}"#,
        );
        assert!(nested.unwrap_err().message.contains("'records.2.member.partitionKey'"));
        // Unknown members are ignored; null is absent.
        checked("ListStreams", r#"{"Whatever":[1,2],"Limit":null}"#).unwrap();
    }

    proptest::proptest! {
        /// Any bytes, as either encoding, for any operation: an error or a checked document,
        /// never a panic.
        #[test]
        fn any_body_is_answered_without_panicking(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512), op in 0..Operation::ALL.len(), cbor: bool) {
            let encoding = if cbor { Encoding::Cbor } else { Encoding::Json };
            if let Ok(mut value) = decode(encoding, &body) {
                let _ = check(Operation::ALL[op].name(), &mut value, encoding);
            }
        }

        /// Documents of the right outline but arbitrary member values.
        #[test]
        fn any_member_values_are_answered_without_panicking(
            values in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just("null".to_string()),
                proptest::num::i64::ANY.prop_map(|n| n.to_string()),
                proptest::num::f64::NORMAL.prop_map(|n| n.to_string()),
                "[a-zA-Z0-9+/=:_.-]{0,40}".prop_map(|s| format!("{s:?}")),
                proptest::strategy::Just("[{}]".to_string()),
                proptest::strategy::Just("{\"Type\":\"AT_TIMESTAMP\",\"Timestamp\":1e300}".to_string()),
            ], 1..8),
            op in 0..Operation::ALL.len(),
        ) {
            let names = ["StreamName", "ShardCount", "Records", "Data", "Tags", "StartingPosition", "Limit", "Timestamp"];
            let members: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:?}:{v}", names[i % names.len()])).collect();
            let body = format!("{{{}}}", members.join(","));
            if let Ok(mut value) = decode(Encoding::Json, body.as_bytes()) {
                let _ = check(Operation::ALL[op].name(), &mut value, Encoding::Json);
            }
        }
    }

    #[test]
    fn blobs_and_timestamps_are_normalised() {
        let value = checked("PutRecord", r#"{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k"}"#).unwrap();
        assert_eq!(value.get("Data"), Some(&Value::Blob(Bytes::from_static(b"hello"))));
        let value = checked(
            "GetShardIterator",
            r#"{"StreamName":"s","ShardId":"x","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1704164645.678}"#,
        )
        .unwrap();
        assert_eq!(value.get("Timestamp"), Some(&Value::Timestamp(1_704_164_645_678)));

        // CBOR: a byte string and tag 1 around epoch milliseconds.
        let mut cbor = Vec::new();
        let document = ciborium::Value::Map(vec![
            (ciborium::Value::Text("StreamName".into()), ciborium::Value::Text("s".into())),
            (ciborium::Value::Text("ShardId".into()), ciborium::Value::Text("x".into())),
            (ciborium::Value::Text("ShardIteratorType".into()), ciborium::Value::Text("AT_TIMESTAMP".into())),
            (
                ciborium::Value::Text("Timestamp".into()),
                ciborium::Value::Tag(1, Box::new(ciborium::Value::Integer(1_704_164_645_678i64.into()))),
            ),
        ]);
        ciborium::ser::into_writer(&document, &mut cbor).unwrap();
        let mut value = decode(Encoding::Cbor, &cbor).unwrap();
        check("GetShardIterator", &mut value, Encoding::Cbor).unwrap();
        assert_eq!(value.get("Timestamp"), Some(&Value::Timestamp(1_704_164_645_678)));
    }
}
