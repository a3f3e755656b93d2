//! Object naming: `Prefix` / `ErrorOutputPrefix` expressions and the object name suffix.
//!
//! A prefix is literal text with `!{namespace:value}` expressions (the developer guide's "Custom
//! prefixes for Amazon S3 objects"):
//! - `!{timestamp:FORMAT}`: the approximate arrival time of the oldest record in the object, in
//!   UTC, formatted with a Java `DateTimeFormatter` pattern (letters `y M d H m s S`, text in
//!   single quotes taken literally);
//! - `!{firehose:random-string}`: 11 random characters, new at each use;
//! - `!{firehose:error-output-type}`: only in `ErrorOutputPrefix`: `processing-failed`,
//!   `format-conversion-failed`, `http-endpoint-failed`, …;
//! - `!{partitionKeyFromQuery:KEY}` / `!{partitionKeyFromLambda:KEY}`: a dynamic partitioning
//!   key extracted from the record by the `MetadataExtraction` query or returned by the
//!   transformation.
//!
//! A prefix without a timestamp expression (and without partition keys) gets
//! `!{timestamp:yyyy/MM/dd/HH/}` appended, which gives AWS's default `YYYY/MM/DD/HH/` layout.
//! The object name after the prefix is
//! `DeliveryStreamName-DeliveryStreamVersion-YYYY-MM-DD-HH-MM-SS-RandomString[extension]`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::Rng;

use crate::error::ApiError;
use crate::limits::{PREFIX_EVALUATED_CHARS_MAX, RANDOM_STRING_CHARS};

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(Vec<DateToken>),
    RandomString,
    ErrorOutputType,
    KeyFromQuery(String),
    KeyFromLambda(String),
}

/// One piece of a Java `DateTimeFormatter` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DateToken {
    Literal(String),
    /// A pattern letter and how many times it was repeated.
    Field(char, usize),
}

/// Which prefix is parsed: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixKind {
    Prefix,
    ErrorOutputPrefix,
}

/// A parsed, validated prefix expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTemplate {
    parts: Vec<Part>,
}

/// The values an evaluation needs besides the template.
#[derive(Debug, Clone, Default)]
pub struct PrefixContext<'a> {
    /// Arrival time of the oldest record in the object.
    pub timestamp: Option<DateTime<Utc>>,
    /// For `!{firehose:error-output-type}`.
    pub error_output_type: Option<&'a str>,
    /// Keys from the `MetadataExtraction` query.
    pub keys_from_query: Option<&'a BTreeMap<String, String>>,
    /// Keys returned by the transformation in `metadata.partitionKeys`.
    pub keys_from_lambda: Option<&'a BTreeMap<String, String>>,
}

/// Why a prefix could not be evaluated for a record (the record goes to the error output).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    #[error("partition key {0} was not found in the record's keys")]
    MissingKey(String),
    #[error("the evaluated prefix is longer than {PREFIX_EVALUATED_CHARS_MAX} characters")]
    TooLong,
}

impl PrefixTemplate {
    /// Parses `text` as a prefix of `kind`; the errors are AWS's InvalidArgumentException.
    pub fn parse(text: &str, kind: PrefixKind) -> Result<Self, ApiError> {
        let field = match kind {
            PrefixKind::Prefix => "Prefix",
            PrefixKind::ErrorOutputPrefix => "ErrorOutputPrefix",
        };
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ApiError::invalid_argument(format!(
                    "{field} is invalid: the expression starting at '!{{{}' is not closed with '}}'.",
                    truncate(after, 32)
                )));
            };
            let expression = &after[..end];
            let (namespace, value) = expression.split_once(':').ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "{field} is invalid: expression '!{{{expression}}}' must be of the form !{{namespace:value}}."
                ))
            })?;
            let part = match namespace {
                "timestamp" => Part::Timestamp(parse_date_pattern(value).map_err(|why| {
                    ApiError::invalid_argument(format!(
                        "{field} is invalid: '{value}' is not a valid timestamp format: {why}."
                    ))
                })?),
                "firehose" => match value {
                    "random-string" => Part::RandomString,
                    "error-output-type" if kind == PrefixKind::ErrorOutputPrefix => Part::ErrorOutputType,
                    "error-output-type" => {
                        return Err(ApiError::invalid_argument(
                            "Prefix cannot contain !{firehose:error-output-type}; it can only be used in ErrorOutputPrefix.",
                        ))
                    }
                    other => {
                        return Err(ApiError::invalid_argument(format!(
                            "{field} is invalid: unknown value '{other}' in the firehose namespace (valid: random-string, error-output-type)."
                        )))
                    }
                },
                "partitionKeyFromQuery" if kind == PrefixKind::Prefix && !value.is_empty() => {
                    Part::KeyFromQuery(value.to_string())
                }
                "partitionKeyFromLambda" if kind == PrefixKind::Prefix && !value.is_empty() => {
                    Part::KeyFromLambda(value.to_string())
                }
                other => {
                    return Err(ApiError::invalid_argument(format!(
                        "{field} is invalid: unknown namespace '{other}' in expression '!{{{expression}}}'."
                    )))
                }
            };
            parts.push(part);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(PrefixTemplate { parts })
    }

    /// A template of literal text only.
    pub fn literal(text: &str) -> Self {
        PrefixTemplate { parts: vec![Part::Literal(text.to_string())] }
    }

    /// Whether the template has any `!{…}` expression.
    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    /// Whether the template has a `!{timestamp:…}` expression.
    pub fn has_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    /// Whether the template has `!{firehose:error-output-type}`.
    pub fn has_error_output_type(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::ErrorOutputType))
    }

    /// The keys of `!{partitionKeyFromQuery:…}` expressions.
    pub fn query_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::KeyFromQuery(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The keys of `!{partitionKeyFromLambda:…}` expressions.
    pub fn lambda_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::KeyFromLambda(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Whether the template depends on the record (partition keys).
    pub fn is_dynamic(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::KeyFromQuery(_) | Part::KeyFromLambda(_)))
    }

    /// This template with `!{timestamp:yyyy/MM/dd/HH/}` appended (AWS's default layout).
    pub fn with_default_timestamp(mut self) -> Self {
        self.parts.push(Part::Timestamp(parse_date_pattern("yyyy/MM/dd/HH/").expect("valid pattern")));
        self
    }

    /// This template followed by `other`.
    pub fn then(mut self, other: PrefixTemplate) -> Self {
        self.parts.extend(other.parts);
        self
    }

    /// The part of the prefix that depends on the record only (partition keys), used to group
    /// records into per-partition buffers. Time and random parts are evaluated at delivery.
    pub fn partition_of(&self, ctx: &PrefixContext<'_>) -> Result<String, EvaluateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::KeyFromQuery(k) => {
                    let v = ctx
                        .keys_from_query
                        .and_then(|m| m.get(k))
                        .ok_or_else(|| EvaluateError::MissingKey(k.clone()))?;
                    out.push_str(k);
                    out.push('=');
                    out.push_str(v);
                    out.push('\u{0}');
                }
                Part::KeyFromLambda(k) => {
                    let v = ctx
                        .keys_from_lambda
                        .and_then(|m| m.get(k))
                        .ok_or_else(|| EvaluateError::MissingKey(k.clone()))?;
                    out.push_str(k);
                    out.push('=');
                    out.push_str(v);
                    out.push('\u{0}');
                }
                _ => {}
            }
        }
        if out.len() > PREFIX_EVALUATED_CHARS_MAX {
            return Err(EvaluateError::TooLong);
        }
        Ok(out)
    }

    /// Evaluates the template.
    pub fn evaluate(&self, ctx: &PrefixContext<'_>) -> Result<String, EvaluateError> {
        let mut out = String::new();
        let timestamp = ctx.timestamp.unwrap_or_else(Utc::now);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(tokens) => format_date(&mut out, tokens, &timestamp),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(ctx.error_output_type.unwrap_or("processing-failed")),
                Part::KeyFromQuery(k) => out.push_str(
                    ctx.keys_from_query.and_then(|m| m.get(k)).ok_or_else(|| EvaluateError::MissingKey(k.clone()))?,
                ),
                Part::KeyFromLambda(k) => out.push_str(
                    ctx.keys_from_lambda.and_then(|m| m.get(k)).ok_or_else(|| EvaluateError::MissingKey(k.clone()))?,
                ),
            }
        }
        if out.chars().count() > PREFIX_EVALUATED_CHARS_MAX {
            return Err(EvaluateError::TooLong);
        }
        Ok(out)
    }
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

/// Parses a Java `DateTimeFormatter` pattern restricted to the letters that make sense in an
/// object prefix.
fn parse_date_pattern(pattern: &str) -> Result<Vec<DateToken>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted text; '' inside or outside quotes is one quote.
            if chars.get(i + 1) == Some(&'\'') {
                tokens.push(DateToken::Literal("'".into()));
                i += 2;
                continue;
            }
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(DateToken::Literal(text));
        } else if c.is_ascii_alphabetic() {
            if !matches!(c, 'y' | 'u' | 'M' | 'd' | 'H' | 'm' | 's' | 'S' | 'D') {
                return Err(format!("pattern letter '{c}' is not supported"));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            tokens.push(DateToken::Field(c, n));
            i += n;
        } else {
            tokens.push(DateToken::Literal(c.to_string()));
            i += 1;
        }
    }
    Ok(tokens)
}

fn format_date(out: &mut String, tokens: &[DateToken], t: &DateTime<Utc>) {
    use std::fmt::Write;
    for token in tokens {
        match token {
            DateToken::Literal(s) => out.push_str(s),
            DateToken::Field(c, n) => {
                let n = *n;
                let _ = match c {
                    // Java: "yy" is the two-digit year, any other count the full year padded.
                    'y' | 'u' if n == 2 => write!(out, "{:02}", t.year().rem_euclid(100)),
                    'y' | 'u' => write!(out, "{:0n$}", t.year()),
                    'M' => write!(out, "{:0n$}", t.month()),
                    'd' => write!(out, "{:0n$}", t.day()),
                    'D' => write!(out, "{:0n$}", t.ordinal()),
                    'H' => write!(out, "{:0n$}", t.hour()),
                    'm' => write!(out, "{:0n$}", t.minute()),
                    's' => write!(out, "{:0n$}", t.second()),
                    'S' => {
                        // Fraction of a second, truncated to n digits.
                        let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                        write!(out, "{}", &nanos[..n.min(9)])
                    }
                    _ => unreachable!("letters are checked at parse time"),
                };
            }
        }
    }
}

/// `!{firehose:random-string}`: 11 characters of lowercase hex and digits, like AWS's
/// (`046b6c7f-0b` in the guide: hex with a dash).
pub fn random_string() -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(RANDOM_STRING_CHARS);
    for i in 0..RANDOM_STRING_CHARS {
        if i == 8 {
            s.push('-');
        } else {
            s.push(char::from_digit(rng.gen_range(0..16), 16).expect("hex digit"));
        }
    }
    s
}

/// The object name after the prefix:
/// `DeliveryStreamName-DeliveryStreamVersion-YYYY-MM-DD-HH-MM-SS-RandomString[extension]`,
/// with the time of the oldest record in the object and a random UUID.
pub fn object_name(stream_name: &str, version: u64, oldest: DateTime<Utc>, extension: &str) -> String {
    format!("{stream_name}-{version}-{}-{}{extension}", oldest.format("%Y-%m-%d-%H-%M-%S"), uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2018, 8, 27, 10, 30, 5).unwrap()
    }

    fn check(prefix: &str, kind: PrefixKind, error_type: Option<&str>, want: &str) {
        let t = PrefixTemplate::parse(prefix, kind).unwrap();
        let ctx = PrefixContext { timestamp: Some(at()), error_output_type: error_type, ..Default::default() };
        assert_eq!(t.evaluate(&ctx).unwrap(), want, "prefix {prefix}");
    }

    #[test]
    fn developer_guide_examples() {
        check(
            "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
            PrefixKind::Prefix,
            None,
            "myPrefix/year=2018/month=08/day=27/hour=10/",
        );
        check(
            "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
            PrefixKind::ErrorOutputPrefix,
            Some("processing-failed"),
            "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed",
        );
        check(
            "myFirehoseFailures/!{firehose:error-output-type}/",
            PrefixKind::ErrorOutputPrefix,
            Some("processing-failed"),
            "myFirehoseFailures/processing-failed/",
        );
        check("a/!{timestamp:yy-M-d H:m:s.SSS}", PrefixKind::Prefix, None, "a/18-8-27 10:30:5.000");
        check("q/!{timestamp:''yyyy''}", PrefixKind::Prefix, None, "q/'2018'");
    }

    #[test]
    fn default_layout_is_appended() {
        let t = PrefixTemplate::parse("logs/", PrefixKind::Prefix).unwrap().with_default_timestamp();
        let ctx = PrefixContext { timestamp: Some(at()), ..Default::default() };
        assert_eq!(t.evaluate(&ctx).unwrap(), "logs/2018/08/27/10/");
    }

    #[test]
    fn random_string_is_new_each_time() {
        let t =
            PrefixTemplate::parse("r=!{firehose:random-string}/!{firehose:random-string}", PrefixKind::Prefix).unwrap();
        let s = t.evaluate(&PrefixContext::default()).unwrap();
        let (a, b) = s.trim_start_matches("r=").split_once('/').unwrap();
        assert_eq!(a.len(), RANDOM_STRING_CHARS);
        assert_ne!(a, b);
    }

    #[test]
    fn partition_keys() {
        let t = PrefixTemplate::parse(
            "c=!{partitionKeyFromQuery:customer}/d=!{partitionKeyFromLambda:device}/",
            PrefixKind::Prefix,
        )
        .unwrap();
        assert!(t.is_dynamic());
        let q = BTreeMap::from([("customer".to_string(), "17".to_string())]);
        let l = BTreeMap::from([("device".to_string(), "mobile".to_string())]);
        let ctx = PrefixContext { keys_from_query: Some(&q), keys_from_lambda: Some(&l), ..Default::default() };
        assert_eq!(t.evaluate(&ctx).unwrap(), "c=17/d=mobile/");
        let missing = PrefixContext { keys_from_query: Some(&q), ..Default::default() };
        assert_eq!(t.evaluate(&missing), Err(EvaluateError::MissingKey("device".into())));
    }

    #[test]
    fn refusals() {
        for (text, kind) in [
            ("a/!{timestamp:yyyy", PrefixKind::Prefix),
            ("a/!{firehose:error-output-type}/", PrefixKind::Prefix),
            ("a/!{nope:x}/", PrefixKind::Prefix),
            ("a/!{timestamp:yyyy-QQ}/", PrefixKind::Prefix),
            ("a/!{timestamp:'open}/", PrefixKind::Prefix),
            ("a/!{partitionKeyFromQuery:k}/", PrefixKind::ErrorOutputPrefix),
            ("a/!{firehose:other}/", PrefixKind::Prefix),
        ] {
            let err = PrefixTemplate::parse(text, kind).unwrap_err();
            assert_eq!(err.error_type, crate::error::ErrorType::InvalidArgumentException, "{text}");
        }
    }

    #[test]
    fn object_names_follow_aws() {
        let name = object_name("orders", 3, at(), ".gz");
        let re = regex::Regex::new(r"^orders-3-2018-08-27-10-30-05-[0-9a-f-]{36}\.gz$").unwrap();
        assert!(re.is_match(&name), "{name}");
    }
}
