//! Reading `agent.json`'s objects as the AWS agent's `Configuration` reads them: keys looked
//! up in order, typed values that may be written as strings, every key accounted for
//! (supported, ignored with a warning, misspelt, unknown), and the errors and warnings that
//! come of it. Used by the configuration (`config.rs`) and the processing options
//! (`process.rs`).

use std::path::PathBuf;

use crate::json::Json;

/// A JSON object's entries, in order.
pub(crate) type Obj = [(String, Json)];

/// The value of `key` in `obj` (the last one if repeated, as in the AWS agent's maps).
pub(crate) fn get<'a>(obj: &'a Obj, key: &str) -> Option<&'a Json> {
    obj.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}
/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("agent.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{key}: {value} is outside the valid range {min}..={max}")]
    OutOfRange { key: String, value: i128, min: u64, max: u64 },
    #[error("{key}: not supported by sluice-agent: {reason}")]
    Unsupported { key: String, reason: String },
    #[error("{key}: unknown key; did you mean {known}? (keys are case-sensitive)")]
    Misspelt { key: String, known: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), message: message.into() }
    }
}

/// A key that is accepted but not acted on, reported at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The key's path, e.g. `maxSendingThreads` or `flows[0].waitOnFullPublishQueueMillis`.
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Sorts every key of `map` into supported, ignored-with-warning, misspelt (error) or unknown
/// (warning).
pub(crate) fn classify_keys(
    map: &Obj,
    prefix: &str,
    supported: &[&str],
    ignored: &[(&str, &str)],
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    for (key, _) in map {
        if supported.contains(&key.as_str()) {
            continue;
        }
        if let Some((_, reason)) = ignored.iter().find(|(k, _)| k == key) {
            warnings.push(ConfigWarning {
                key: format!("{prefix}{key}"),
                reason: format!("accepted but ignored: {reason}"),
            });
            continue;
        }
        let known =
            supported.iter().copied().chain(ignored.iter().map(|(k, _)| *k)).find(|k| k.eq_ignore_ascii_case(key));
        if let Some(known) = known {
            return Err(ConfigError::Misspelt { key: format!("{prefix}{key}"), known: known.to_string() });
        }
        warnings.push(ConfigWarning {
            key: format!("{prefix}{key}"),
            reason: "unknown key, ignored (the Kinesis Agent ignores it too)".into(),
        });
    }
    Ok(())
}

/// Reads typed values the way the AWS agent's `Configuration` does: numbers and booleans may
/// also be written as strings (`"timestamp": "true"` in its own examples).
pub(crate) struct Reader<'a> {
    pub map: &'a Obj,
    pub prefix: &'a str,
}

impl Reader<'_> {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match get(self.map, key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if s.is_empty() => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(Json::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfigError::invalid(self.key(key), "must be a string")),
        }
    }

    pub fn integer(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value: i128 = match get(self.map, key) {
            None | Some(Json::Null) => return Ok(default),
            Some(Json::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (_, Some(u)) => u as i128,
                (Some(i), None) => i as i128,
                _ => return Err(ConfigError::invalid(self.key(key), format!("{n} is not an integer"))),
            },
            Some(Json::String(s)) => s
                .trim()
                .parse::<i128>()
                .map_err(|_| ConfigError::invalid(self.key(key), format!("{s:?} is not an integer")))?,
            Some(_) => return Err(ConfigError::invalid(self.key(key), "must be an integer")),
        };
        if value < min as i128 || value > max as i128 {
            return Err(ConfigError::OutOfRange { key: self.key(key), value, min, max });
        }
        Ok(value as u64)
    }

    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match get(self.map, key) {
            None | Some(Json::Null) => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(other) => Err(ConfigError::invalid(self.key(key), format!("{other} is not true or false"))),
        }
    }

    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match get(self.map, key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Json::String(s) => Ok(s.clone()),
                    _ => Err(ConfigError::invalid(self.key(key), "must be a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ConfigError::invalid(self.key(key), "must be a list of strings")),
        }
    }
}
