//! Request checking against the Kinesis service model, as AWS does it.
//!
//! `kinesis-model.json` holds the request shapes of the operations Sluice serves, extracted
//! from botocore's copy of the AWS model by `scripts/kinesis-model.py` (which also checks that
//! the committed file is current). [`check`] walks a parsed request against its operation's
//! input shape and answers like the service:
//!
//! - a member of the wrong type (a string where an integer belongs, an invalid base64 blob) is
//!   `SerializationException`, at the first one found;
//! - a missing required member, a string too long or not matching its pattern, a number out of
//!   range, a value outside its enum, a list too long is `ValidationException`, all of them in
//!   one message: `2 validation errors detected: Value null at 'streamName' failed to satisfy
//!   constraint: Member must not be null; Value '0' at 'shardCount' ...`;
//! - members the model does not know are ignored, as AWS ignores them.
//!
//! Checking also normalises the two encodings: JSON blobs (base64 text) become
//! [`Value::Blob`], and timestamps (JSON epoch seconds, CBOR epoch milliseconds) become
//! [`Value::Timestamp`] milliseconds, so the operations read one representation.

use super::value::{Encoding, Value};
use crate::error::{ErrorKind, ServiceError};
use base64::Engine as _;
use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

const MODEL_JSON: &str = include_str!("kinesis-model.json");

/// How much of an offending value a validation message quotes. AWS quotes the value; a
/// 1 MiB partition key must not become a 1 MiB error message.
const QUOTED_VALUE_CHARS_MAX: usize = 128;

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
    String { pattern: Option<(String, Regex)>, enumeration: Option<Vec<String>> },
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

/// The request shapes, resolved to indexes.
#[derive(Debug)]
pub struct Model {
    operations: HashMap<String, usize>,
    shapes: Vec<Shape>,
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

impl Model {
    /// The embedded model, parsed once per process.
    pub fn get() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| Model::parse(MODEL_JSON).expect("the embedded kinesis-model.json is valid"))
    }

    fn parse(json: &str) -> Result<Model, String> {
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
        Ok(Model { operations, shapes })
    }

    pub fn has_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }
}

/// Type-checks, normalises and validates `request` as the input of `operation`.
pub fn check(operation: &str, request: &mut Value, encoding: Encoding) -> Result<(), ServiceError> {
    let model = Model::get();
    let Some(&input) = model.operations.get(operation) else {
        return Err(ServiceError::new(ErrorKind::UnknownOperation, format!("Unknown operation {operation}")));
    };
    let mut checker = Checker { model, encoding, violations: Vec::new() };
    checker.walk(input, request, "")?;
    match checker.violations.len() {
        0 => Ok(()),
        count => Err(ServiceError::validation(format!(
            "{count} validation error{} detected: {}",
            if count == 1 { "" } else { "s" },
            checker.violations.join("; ")
        ))),
    }
}

struct Checker<'m> {
    model: &'m Model,
    encoding: Encoding,
    violations: Vec<String>,
}

fn serialization(message: String) -> ServiceError {
    ServiceError::new(ErrorKind::Serialization, message)
}

fn quoted(value: &str) -> String {
    value.chars().take(QUOTED_VALUE_CHARS_MAX).collect()
}

impl Checker<'_> {
    fn violation(&mut self, value: &str, path: &str, constraint: impl AsRef<str>) {
        self.violations.push(format!(
            "Value '{}' at '{path}' failed to satisfy constraint: {}",
            quoted(value),
            constraint.as_ref()
        ));
    }

    fn length(&mut self, shape: &Shape, length: usize, shown: &str, path: &str) {
        if let Some(min) = shape.min.filter(|&min| (length as i64) < min) {
            self.violation(shown, path, format!("Member must have length greater than or equal to {min}"));
        }
        if let Some(max) = shape.max.filter(|&max| (length as i64) > max) {
            self.violation(shown, path, format!("Member must have length less than or equal to {max}"));
        }
    }

    fn walk(&mut self, shape_index: usize, value: &mut Value, path: &str) -> Result<(), ServiceError> {
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
                                self.violations.push(format!(
                                    "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                                ));
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
            Kind::String { pattern, enumeration } => {
                let Value::Text(text) = value else { return Err(mismatch(value, "a String")) };
                let text = text.as_str();
                if let Some(allowed) = enumeration {
                    if !allowed.iter().any(|option| option == text) {
                        self.violation(
                            text,
                            path,
                            format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
                        );
                    }
                }
                self.length(shape, text.chars().count(), text, path);
                if let Some((source, regex)) = pattern {
                    if !regex.is_match(text) {
                        self.violation(text, path, format!("Member must satisfy regular expression pattern: {source}"));
                    }
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
                    self.violation(
                        &number.to_string(),
                        path,
                        format!("Member must have value greater than or equal to {min}"),
                    );
                }
                if let Some(max) = shape.max.filter(|&max| number > max) {
                    self.violation(
                        &number.to_string(),
                        path,
                        format!("Member must have value less than or equal to {max}"),
                    );
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
    use crate::http::value::decode;
    use proptest::strategy::Strategy as _;

    fn checked(operation: &str, json: &str) -> Result<Value, ServiceError> {
        let mut value = decode(Encoding::Json, json.as_bytes()).unwrap();
        check(operation, &mut value, Encoding::Json).map(|()| value)
    }

    fn kind(operation: &str, json: &str) -> ErrorKind {
        checked(operation, json).unwrap_err().kind
    }

    #[test]
    fn the_embedded_model_covers_every_operation_served() {
        let model = Model::get();
        for operation in crate::http::operations::OPERATIONS {
            assert!(model.has_operation(operation), "{operation}");
        }
        assert_eq!(model.operations.len(), crate::http::operations::OPERATIONS.len());
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
        fn any_body_is_answered_without_panicking(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512), op in 0..crate::http::operations::OPERATIONS.len(), cbor: bool) {
            let encoding = if cbor { Encoding::Cbor } else { Encoding::Json };
            if let Ok(mut value) = decode(encoding, &body) {
                let _ = check(crate::http::operations::OPERATIONS[op], &mut value, encoding);
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
            op in 0..crate::http::operations::OPERATIONS.len(),
        ) {
            let names = ["StreamName", "ShardCount", "Records", "Data", "Tags", "StartingPosition", "Limit", "Timestamp"];
            let members: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:?}:{v}", names[i % names.len()])).collect();
            let body = format!("{{{}}}", members.join(","));
            if let Ok(mut value) = decode(Encoding::Json, body.as_bytes()) {
                let _ = check(crate::http::operations::OPERATIONS[op], &mut value, Encoding::Json);
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
