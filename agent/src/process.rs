//! `dataProcessingOptions`: what happens to each record between the file and the sink.
//!
//! Each option does what the AWS agent's converter of the same name does, output byte for
//! byte (the processing tests compare against the outputs in the AWS documentation):
//!
//! - `SINGLELINE` splits the record at `\n` (dropping trailing empty pieces, as Java's
//!   `String.split` does), trims each piece (unless `parseOptions` has `NO_TRIM`), joins them
//!   with nothing (or a literal `\n`, two characters, with `ESCAPE_NEW_LINE`), and ends the
//!   result with a newline.
//! - `CSVTOJSON` drops one trailing newline, splits at `delimiter` (a regular expression,
//!   default `,`; Java split rules again), and writes `{"field": "value", …}` with the
//!   `customFieldNames` in order; a missing column is `null`, extra columns are dropped.
//! - `LOGTOJSON` matches the whole record (without its newline) against the format's pattern
//!   (or `matchPattern`) and writes the captured groups under the format's field names (or
//!   `customFieldNames`); every value is a string, and a group that did not take part, or (for
//!   the Apache formats) is `-`, is `null`. A record that does not match is skipped.
//! - `ADDMETADATA` writes `{"ts": "…", "metadata": …, "data": "record"}`, `ts` (UTC, to the
//!   millisecond) only when `"timestamp": "true"`.
//!
//! The options run in the order given. If one fails, the record is sent unprocessed (the AWS
//! agent's fallback); if `LOGTOJSON` skips it, nothing is sent (its offset is still
//! acknowledged, so it is never read again).

use std::time::SystemTime;

use regex::Regex;

use crate::json::{self, Json};
use crate::keys::{classify_keys, get, ConfigError, ConfigWarning, Obj, Reader};

/// One configured processing option.
#[derive(Debug, Clone)]
pub enum ProcessingOption {
    SingleLine { trim: bool, escape_new_line: bool },
    CsvToJson { fields: Vec<String>, delimiter: Regex },
    LogToJson(LogParser),
    AddMetadata { metadata: Json, timestamp: bool },
}

/// The `logFormat` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    CommonApacheLog,
    CombinedApacheLog,
    ApacheErrorLog,
    /// `SYSLOG` (also accepted as `RFC3164SYSLOG`): `Mmm dd hh:mm:ss host prog[pid]: msg`.
    Syslog,
    /// `RFC3339SYSLOG` (the AWS agent's name): the same line with an RFC 3339 timestamp, as
    /// rsyslog writes files by default.
    Rfc3339Syslog,
    /// `RFC5424SYSLOG`, a Sluice extension (the AWS agent has no such format): the RFC 5424
    /// line `<PRI>VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG`.
    Rfc5424Syslog,
}

impl LogFormat {
    fn from_name(name: &str) -> Option<LogFormat> {
        Some(match name {
            "COMMONAPACHELOG" => LogFormat::CommonApacheLog,
            "COMBINEDAPACHELOG" => LogFormat::CombinedApacheLog,
            "APACHEERRORLOG" => LogFormat::ApacheErrorLog,
            "SYSLOG" | "RFC3164SYSLOG" => LogFormat::Syslog,
            "RFC3339SYSLOG" => LogFormat::Rfc3339Syslog,
            "RFC5424SYSLOG" => LogFormat::Rfc5424Syslog,
            _ => return None,
        })
    }

    /// The field names the AWS agent gives each format (`ApacheLogParser.java`,
    /// `SysLogParser.java`). Note `referer`, spelt as in the HTTP header (the documentation's
    /// pattern says `referrer`; the agent's output says `referer`).
    pub fn fields(self) -> &'static [&'static str] {
        const COMMON: &[&str] = &["host", "ident", "authuser", "datetime", "request", "response", "bytes"];
        const COMBINED: &[&str] =
            &["host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent"];
        const ERROR: &[&str] = &["timestamp", "module", "severity", "processid", "threadid", "client", "message"];
        const SYSLOG: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];
        const RFC5424: &[&str] = &[
            "priority",
            "version",
            "timestamp",
            "hostname",
            "program",
            "processid",
            "messageid",
            "structureddata",
            "message",
        ];
        match self {
            LogFormat::CommonApacheLog => COMMON,
            LogFormat::CombinedApacheLog => COMBINED,
            LogFormat::ApacheErrorLog => ERROR,
            LogFormat::Syslog | LogFormat::Rfc3339Syslog => SYSLOG,
            LogFormat::Rfc5424Syslog => RFC5424,
        }
    }

    /// Whether a captured `-` means "no value" (the Apache formats, and RFC 5424's NILVALUE).
    fn dash_is_null(self) -> bool {
        !matches!(self, LogFormat::Syslog | LogFormat::Rfc3339Syslog)
    }

    /// The format's pattern, matched against the whole record.
    ///
    /// The grammar is the AWS agent's (`PatternConstants.java`, itself taken from Logstash's
    /// grok patterns), written with the character classes Java gives `\w`, `\d`, `\s` and `.`
    /// (ASCII word characters and digits; `.` stops at any Java line terminator), so that the
    /// same lines match and the same groups are captured.
    fn pattern(self) -> String {
        const W: &str = "[0-9A-Za-z_]";
        const S: &str = "[ \\t\\n\\x0B\\x0C\\r]";
        const NOT_S: &str = "[^ \\t\\n\\x0B\\x0C\\r]";
        const ANY: &str = "[^\\n\\r\\x{85}\\x{2028}\\x{2029}]";
        const B: &str = "(?-u:\\b)";
        let int = "(?:[+-]?(?:[0-9]+))";
        let posint = "(?:[1-9][0-9]*)";
        let nonnegint = "(?:[0-9]+)";
        let hostname = format!("(?:[0-9A-Za-z_\\-]+)(?:\\.(?:[0-9A-Za-z_\\-]+))*(?:\\.?|{B})");
        let iporhost = format!("(?:{hostname}|(?:[0-9.]+))");
        let urihost = format!("(?:{iporhost}(?::{posint})?)");
        let user = "(?:[a-zA-Z0-9._-]+)";
        let monthday = "(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
        let day = "(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
        let month = format!("{B}(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?){B}");
        let year = "(?:[1-9][0-9]*)";
        let time = "(?:(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?))";
        let httpdate = format!("(?:{monthday}/{month}/{year}:{time}{S}{int})");
        let error_ts = format!("(?:{day}{S}+{month}{S}+{monthday}{S}+{time}{S}+{year})");
        let syslog_ts = format!("(?:{month}{S}+{monthday}{S}+{time})");
        let rfc3339 =
            "(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?)(?:Z|(?:[-+][0-9]{2}:[0-9]{2}))";
        // `<N.N>`: the dot is unescaped in the AWS agent's pattern, so it matches any character.
        let facility = format!("<{nonnegint}{ANY}{nonnegint}>");
        let prog = format!("([0-9A-Za-z_._/%-]+)(?:\\[({posint})\\])?");
        let common = format!("({iporhost}) ({user}) ({user}) \\[({httpdate})\\] \"([^\"]+)\" ({int}|\\-) ({int}|\\-)");
        let body = match self {
            LogFormat::CommonApacheLog => format!("{common}{ANY}*"),
            LogFormat::CombinedApacheLog => {
                format!("{common} \"([^\"]+)\" \"([^\"]+)\"{ANY}*")
            }
            LogFormat::ApacheErrorLog => format!(
                "\\[({error_ts})\\] \\[(?:({W}+):)?({W}+)\\] \\[pid ({nonnegint})(?::tid ({nonnegint}))?\\] \\[client ({urihost})\\] ({ANY}*)"
            ),
            LogFormat::Syslog => {
                format!("({syslog_ts}) (?:{facility} )?({user}) {prog}: ({ANY}*)")
            }
            LogFormat::Rfc3339Syslog => {
                format!("({rfc3339}) (?:{facility} )?({user}) {prog}: ({ANY}*)")
            }
            LogFormat::Rfc5424Syslog => format!(
                "<([0-9]{{1,3}})>([1-9][0-9]{{0,2}}) ({NOT_S}+) ({NOT_S}+) ({NOT_S}+) ({NOT_S}+) ({NOT_S}+) (-|(?:\\[(?:[^\\]\\\\]|\\\\{ANY})*\\])+)(?: ({ANY}*))?"
            ),
        };
        format!("\\A(?:{body})\\z")
    }
}

/// A compiled LOGTOJSON option.
#[derive(Debug, Clone)]
pub struct LogParser {
    pub format: LogFormat,
    regex: Regex,
    fields: Vec<String>,
    dash_is_null: bool,
}

impl LogParser {
    /// Builds the parser of a format, with the AWS agent's checks: `matchPattern` needs
    /// `customFieldNames`; `customFieldNames` alone must name as many fields as the format has.
    pub fn new(
        format: LogFormat,
        match_pattern: Option<&str>,
        custom_fields: Option<Vec<String>>,
        key: &str,
    ) -> Result<LogParser, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { key: key.to_string(), message };
        let (regex, fields) = match (match_pattern, custom_fields) {
            (Some(_), None) => return Err(invalid("customFieldNames must be given with matchPattern".into())),
            (Some(pattern), Some(fields)) => {
                // Java's `Matcher.matches()`: the pattern must match the whole record.
                let regex = Regex::new(&format!("\\A(?:{pattern})\\z"))
                    .map_err(|e| invalid(format!("matchPattern is not a regular expression: {e}")))?;
                if regex.captures_len() - 1 != fields.len() {
                    return Err(invalid(format!(
                        "matchPattern captures {} groups but customFieldNames names {} fields",
                        regex.captures_len() - 1,
                        fields.len()
                    )));
                }
                (regex, fields)
            }
            (None, custom) => {
                let regex = Regex::new(&format.pattern()).expect("built-in log patterns compile");
                debug_assert_eq!(regex.captures_len() - 1, format.fields().len());
                let fields = match custom {
                    Some(fields) if fields.len() != format.fields().len() => {
                        return Err(invalid(format!(
                            "customFieldNames names {} fields but the format has {}; give matchPattern too",
                            fields.len(),
                            format.fields().len()
                        )))
                    }
                    Some(fields) => fields,
                    None => format.fields().iter().map(|f| f.to_string()).collect(),
                };
                (regex, fields)
            }
        };
        Ok(LogParser { format, regex, fields, dash_is_null: format.dash_is_null() })
    }

    /// The JSON object for `line`, or `None` if it does not match.
    fn to_json(&self, line: &str, out: &mut Vec<u8>) -> bool {
        let Some(captures) = self.regex.captures(line) else {
            return false;
        };
        out.push(b'{');
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_string(out, field);
            out.push(b':');
            match captures.get(i + 1).map(|m| m.as_str()) {
                None => out.extend_from_slice(b"null"),
                Some("-") if self.dash_is_null => out.extend_from_slice(b"null"),
                Some(value) => json::write_string(out, value),
            }
        }
        out.push(b'}');
        true
    }
}

/// The keys each option knows (beyond `optionName`); others are reported.
fn option_keys(name: &str) -> &'static [&'static str] {
    match name {
        "SINGLELINE" => &["optionName", "parseOptions"],
        "CSVTOJSON" => &["optionName", "customFieldNames", "delimiter", "jsonFormat"],
        "LOGTOJSON" => &["optionName", "logFormat", "matchPattern", "customFieldNames", "jsonFormat"],
        "ADDMETADATA" => &["optionName", "metadata", "timestamp", "jsonFormat"],
        _ => &["optionName"],
    }
}

/// Parses one entry of `dataProcessingOptions` (`key` names it in errors).
pub fn parse_option(value: &Json, key: &str) -> Result<ProcessingOption, ConfigError> {
    parse_option_warn(value, key, &mut Vec::new())
}

/// [`parse_option`], collecting warnings for keys that are accepted but not acted on.
pub fn parse_option_warn(
    value: &Json,
    key: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<ProcessingOption, ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid { key: key.to_string(), message: message.to_string() };
    let Json::Object(map) = value else {
        return Err(invalid("must be an object with an optionName"));
    };
    let map: &Obj = map;
    let prefix = format!("{key}.");
    let reader = Reader { map, prefix: &prefix };
    let name = reader.string("optionName")?.ok_or_else(|| invalid("optionName is required"))?;
    match name.as_str() {
        "ADDEC2METADATA" | "ADDBRACKETS" | "USINGPLUGGIN" => {
            return Err(ConfigError::Unsupported {
                key: format!("{prefix}optionName"),
                reason: format!(
                    "{name} would change the records shipped and is not implemented (supported: SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA)"
                ),
            })
        }
        "SINGLELINE" | "CSVTOJSON" | "LOGTOJSON" | "ADDMETADATA" => {}
        other => {
            return Err(invalid(&format!(
                "unknown optionName {other:?} (supported: SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA)"
            )))
        }
    }
    classify_keys(map, &prefix, option_keys(&name), &[], warnings)?;
    match reader.string("jsonFormat")?.as_deref() {
        None | Some("COMPACT") => {}
        Some("PRETTYPRINT") => {
            return Err(ConfigError::Unsupported {
                key: format!("{prefix}jsonFormat"),
                reason: "PRETTYPRINT output is not implemented; use COMPACT".into(),
            })
        }
        Some(other) => {
            return Err(ConfigError::Invalid {
                key: format!("{prefix}jsonFormat"),
                message: format!("{other:?} is not COMPACT or PRETTYPRINT"),
            })
        }
    }
    Ok(match name.as_str() {
        "SINGLELINE" => {
            let options = reader.string_list("parseOptions")?.unwrap_or_default();
            for option in &options {
                if option != "NO_TRIM" && option != "ESCAPE_NEW_LINE" {
                    return Err(ConfigError::Invalid {
                        key: format!("{prefix}parseOptions"),
                        message: format!("{option:?} is not NO_TRIM or ESCAPE_NEW_LINE"),
                    });
                }
            }
            ProcessingOption::SingleLine {
                trim: !options.iter().any(|o| o == "NO_TRIM"),
                escape_new_line: options.iter().any(|o| o == "ESCAPE_NEW_LINE"),
            }
        }
        "CSVTOJSON" => {
            let fields = reader.string_list("customFieldNames")?.ok_or_else(|| ConfigError::Invalid {
                key: format!("{prefix}customFieldNames"),
                message: "required for CSVTOJSON".into(),
            })?;
            // `delimiter` is a Java regular expression (`String.split`): "\\t" in agent.json
            // is the pattern `\t`.
            let delimiter = reader.string("delimiter")?.unwrap_or_else(|| ",".into());
            let delimiter = Regex::new(&delimiter).map_err(|e| ConfigError::Invalid {
                key: format!("{prefix}delimiter"),
                message: format!("not a regular expression: {e}"),
            })?;
            ProcessingOption::CsvToJson { fields, delimiter }
        }
        "LOGTOJSON" => {
            let format_name = reader.string("logFormat")?.ok_or_else(|| ConfigError::Invalid {
                key: format!("{prefix}logFormat"),
                message: "required for LOGTOJSON".into(),
            })?;
            let format = LogFormat::from_name(&format_name).ok_or_else(|| ConfigError::Invalid {
                key: format!("{prefix}logFormat"),
                message: format!(
                    "{format_name:?} is not COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG, RFC3164SYSLOG, RFC3339SYSLOG or RFC5424SYSLOG"
                ),
            })?;
            ProcessingOption::LogToJson(LogParser::new(
                format,
                reader.string("matchPattern")?.as_deref(),
                reader.string_list("customFieldNames")?,
                key,
            )?)
        }
        "ADDMETADATA" => ProcessingOption::AddMetadata {
            metadata: get(map, "metadata").cloned().unwrap_or(Json::Null),
            // The AWS agent reads `timestamp` as a string and `Boolean("true")`s it.
            timestamp: match get(map, "timestamp") {
                Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
                Some(Json::Bool(b)) => *b,
                _ => false,
            },
        },
        _ => unreachable!("option names were checked above"),
    })
}

/// Why one option could not process a record (the record is then sent unprocessed).
#[derive(Debug, thiserror::Error)]
#[error("processing option {option} failed: {message}")]
pub struct ConversionError {
    pub option: &'static str,
    pub message: String,
}

/// The processing options of one flow, applied in order.
#[derive(Debug, Clone, Default)]
pub struct Processor {
    options: Vec<ProcessingOption>,
}

impl Processor {
    pub fn new(options: Vec<ProcessingOption>) -> Processor {
        Processor { options }
    }

    /// Whether records pass through unchanged.
    pub fn is_identity(&self) -> bool {
        self.options.is_empty()
    }

    /// Processes one record. `Ok(None)`: skip the record (LOGTOJSON did not match).
    /// `now` is used by ADDMETADATA's timestamp.
    pub fn apply(&self, record: &[u8], now: SystemTime) -> Result<Option<Vec<u8>>, ConversionError> {
        let mut current: Option<Vec<u8>> = None;
        for option in &self.options {
            let input = current.as_deref().unwrap_or(record);
            match apply_one(option, input, now)? {
                Some(output) => current = Some(output),
                None => return Ok(None),
            }
        }
        Ok(Some(current.unwrap_or_else(|| record.to_vec())))
    }
}

/// Java's `String.split(regex)`: like a regex split, but trailing empty pieces are dropped and
/// a zero-width match at the very start makes no leading empty piece.
fn java_split<'a>(text: &'a str, pattern: &Regex) -> Vec<&'a str> {
    if text.is_empty() {
        return vec![""];
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    for m in pattern.find_iter(text) {
        if m.end() == 0 {
            continue;
        }
        pieces.push(&text[start..m.start()]);
        start = m.end();
    }
    pieces.push(&text[start..]);
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces
}

/// Java's `String.trim`: strips every character up to U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn without_newline(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

fn apply_one(option: &ProcessingOption, input: &[u8], now: SystemTime) -> Result<Option<Vec<u8>>, ConversionError> {
    // Java decodes records as UTF-8, replacing invalid bytes with U+FFFD.
    let text = String::from_utf8_lossy(input);
    let mut out = Vec::with_capacity(input.len() * 2 + 16);
    match option {
        ProcessingOption::SingleLine { trim, escape_new_line } => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            if lines.len() > 1 {
                // Java's split drops trailing empty pieces when the separator occurs.
                while lines.last() == Some(&"") {
                    lines.pop();
                }
            }
            for (i, line) in lines.into_iter().enumerate() {
                if i > 0 && *escape_new_line {
                    out.extend_from_slice(b"\\n");
                }
                let line = if *trim { java_trim(line) } else { line };
                out.extend_from_slice(line.as_bytes());
            }
        }
        ProcessingOption::CsvToJson { fields, delimiter } => {
            let columns = java_split(without_newline(&text), delimiter);
            out.push(b'{');
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_string(&mut out, field);
                out.push(b':');
                match columns.get(i) {
                    Some(column) => json::write_string(&mut out, column),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        }
        ProcessingOption::LogToJson(parser) => {
            if !parser.to_json(without_newline(&text), &mut out) {
                return Ok(None);
            }
        }
        ProcessingOption::AddMetadata { metadata, timestamp } => {
            out.push(b'{');
            if *timestamp {
                out.extend_from_slice(b"\"ts\":\"");
                out.extend_from_slice(humantime::format_rfc3339_millis(now).to_string().as_bytes());
                out.extend_from_slice(b"\",");
            }
            out.extend_from_slice(b"\"metadata\":");
            metadata.write(&mut out);
            out.extend_from_slice(b",\"data\":");
            json::write_string(&mut out, without_newline(&text));
            out.push(b'}');
        }
    }
    out.push(b'\n');
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_split_rules() {
        let comma = Regex::new(",").unwrap();
        assert_eq!(java_split("a,b,,", &comma), ["a", "b"]);
        assert_eq!(java_split(",a", &comma), ["", "a"]);
        assert_eq!(java_split("", &comma), [""]);
        assert_eq!(java_split(",,", &comma), Vec::<&str>::new());
        let empty = Regex::new("").unwrap();
        assert_eq!(java_split("ab", &empty), ["a", "b"]);
    }

    #[test]
    fn every_format_compiles_with_its_field_count() {
        for format in [
            LogFormat::CommonApacheLog,
            LogFormat::CombinedApacheLog,
            LogFormat::ApacheErrorLog,
            LogFormat::Syslog,
            LogFormat::Rfc3339Syslog,
            LogFormat::Rfc5424Syslog,
        ] {
            LogParser::new(format, None, None, "k").unwrap();
        }
    }
}
