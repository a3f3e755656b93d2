//! Condition blocks: `{"Operator": {"key": value-or-values, …}, …}`, and the request context
//! they are evaluated against.
//!
//! Semantics, as IAM documents them: every operator of a block and every key under an
//! operator must hold (AND); a key's several policy values are alternatives (OR), and for the
//! negated operators (`StringNotEquals`, `NotIpAddress`, …) the request value must match none
//! of them. A key missing from the request makes a condition false, except: `…IfExists` and
//! the negated operators are then true, `ForAllValues:` is true, and `Null` tests exactly
//! that. `ForAnyValue:`/`ForAllValues:` compare a multi-valued key (`aws:TagKeys`) value by value.

use super::wildcard::matches;
use super::PolicyError;
use crate::timestamp::{iso8601, parse_policy_date};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

use ConditionOperator as Op;

const OPERATORS: [(&str, Op); 26] = [
    ("StringEquals", Op::StringEquals),
    ("StringNotEquals", Op::StringNotEquals),
    ("StringEqualsIgnoreCase", Op::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Op::StringNotEqualsIgnoreCase),
    ("StringLike", Op::StringLike),
    ("StringNotLike", Op::StringNotLike),
    ("NumericEquals", Op::NumericEquals),
    ("NumericNotEquals", Op::NumericNotEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("DateEquals", Op::DateEquals),
    ("DateNotEquals", Op::DateNotEquals),
    ("DateLessThan", Op::DateLessThan),
    ("DateLessThanEquals", Op::DateLessThanEquals),
    ("DateGreaterThan", Op::DateGreaterThan),
    ("DateGreaterThanEquals", Op::DateGreaterThanEquals),
    ("Bool", Op::Bool),
    ("IpAddress", Op::IpAddress),
    ("NotIpAddress", Op::NotIpAddress),
    ("ArnEquals", Op::ArnEquals),
    ("ArnLike", Op::ArnLike),
    ("ArnNotEquals", Op::ArnNotEquals),
    ("ArnNotLike", Op::ArnNotLike),
    ("Null", Op::Null),
];

impl ConditionOperator {
    fn negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::NumericNotEquals
                | Op::DateNotEquals
                | Op::NotIpAddress
                | Op::ArnNotEquals
                | Op::ArnNotLike
        )
    }

    /// Whether one request value and one policy value match, for the operator's positive
    /// form (`StringNotEquals` compares as `StringEquals`; its caller negates). Values that do
    /// not parse as the operator's type never match.
    fn compare(self, request: &str, policy: &str) -> bool {
        match self {
            Op::StringEquals | Op::StringNotEquals => request == policy,
            Op::StringEqualsIgnoreCase | Op::StringNotEqualsIgnoreCase => {
                request.to_lowercase() == policy.to_lowercase()
            }
            Op::StringLike | Op::StringNotLike => matches(policy, request, false),
            Op::NumericEquals
            | Op::NumericNotEquals
            | Op::NumericLessThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThan
            | Op::NumericGreaterThanEquals => match (request.trim().parse::<f64>(), policy.trim().parse::<f64>()) {
                (Ok(r), Ok(p)) => self.ordering_holds(r.partial_cmp(&p)),
                _ => false,
            },
            Op::DateEquals
            | Op::DateNotEquals
            | Op::DateLessThan
            | Op::DateLessThanEquals
            | Op::DateGreaterThan
            | Op::DateGreaterThanEquals => match (parse_policy_date(request), parse_policy_date(policy)) {
                (Some(r), Some(p)) => self.ordering_holds(Some(r.cmp(&p))),
                _ => false,
            },
            Op::Bool => parse_bool(request).is_some() && parse_bool(request) == parse_bool(policy),
            Op::IpAddress | Op::NotIpAddress => match (request.trim().parse::<IpAddr>(), parse_cidr(policy)) {
                (Ok(ip), Some(net)) => net.contains(&ip),
                _ => false,
            },
            Op::ArnEquals | Op::ArnLike | Op::ArnNotEquals | Op::ArnNotLike => arn_matches(policy, request),
            Op::Null => unreachable!("Null is decided by presence alone"),
        }
    }

    fn ordering_holds(self, ordering: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let Some(ordering) = ordering else { return false };
        match self {
            Op::NumericEquals | Op::NumericNotEquals | Op::DateEquals | Op::DateNotEquals => ordering == Equal,
            Op::NumericLessThan | Op::DateLessThan => ordering == Less,
            Op::NumericLessThanEquals | Op::DateLessThanEquals => ordering != Greater,
            Op::NumericGreaterThan | Op::DateGreaterThan => ordering == Greater,
            Op::NumericGreaterThanEquals | Op::DateGreaterThanEquals => ordering != Less,
            _ => false,
        }
    }

    /// Whether a policy value is well formed for this operator (checked when the policy is
    /// accepted, so a typo is refused rather than silently never matching).
    fn accepts(self, value: &str) -> bool {
        match self {
            Op::NumericEquals
            | Op::NumericNotEquals
            | Op::NumericLessThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThan
            | Op::NumericGreaterThanEquals => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
            Op::DateEquals
            | Op::DateNotEquals
            | Op::DateLessThan
            | Op::DateLessThanEquals
            | Op::DateGreaterThan
            | Op::DateGreaterThanEquals => parse_policy_date(value).is_some(),
            Op::Bool | Op::Null => parse_bool(value).is_some(),
            Op::IpAddress | Op::NotIpAddress => parse_cidr(value).is_some(),
            _ => true,
        }
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A CIDR block, or a single address (as a /32 or /128).
fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// ARN matching as `ArnLike` does it: the six colon-separated parts (the last may contain
/// colons) matched one by one, each with wildcards.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    pattern.len() == 6 && arn.len() == 6 && pattern.iter().zip(&arn).all(|(p, a)| matches(p, a, false))
}

/// `ForAnyValue:` / `ForAllValues:`, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// One operator applied to one key: `"StringEquals": {"aws:username": ["a", "b"]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: ConditionOperator,
    pub qualifier: SetQualifier,
    pub if_exists: bool,
    /// The key in lower case (condition keys are case-insensitive).
    pub key: String,
    pub values: Vec<String>,
}

fn invalid_type(name: &str) -> PolicyError {
    PolicyError::Malformed(format!("Invalid Condition type : {name}"))
}

/// Parses a statement's `Condition` element.
pub fn parse_block(value: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(block) = value else {
        return Err(PolicyError::Malformed("Condition must be an object".into()));
    };
    let mut conditions = Vec::new();
    for (name, keys) in block {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else {
            (SetQualifier::None, name.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) => (true, base),
            None => (false, rest),
        };
        let operator =
            OPERATORS.iter().find(|(n, _)| *n == base).map(|(_, op)| *op).ok_or_else(|| invalid_type(name))?;
        if operator == Op::Null && (if_exists || qualifier != SetQualifier::None) {
            return Err(invalid_type(name));
        }
        let Value::Object(keys) = keys else {
            return Err(PolicyError::Malformed(format!("Condition {name} must map condition keys to values")));
        };
        for (key, values) in keys {
            if !key.contains(':') || key.starts_with(':') {
                return Err(PolicyError::Malformed(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".into(),
                ));
            }
            let values = condition_values(values).ok_or_else(|| {
                PolicyError::Malformed(format!(
                    "Condition {name} key {key} must have a string, number or boolean value, or a list of them"
                ))
            })?;
            if let Some(bad) = values.iter().find(|value| !operator.accepts(value)) {
                return Err(PolicyError::Malformed(format!("Invalid value for condition {name} key {key}: {bad}")));
            }
            conditions.push(Condition { operator, qualifier, if_exists, key: key.to_ascii_lowercase(), values });
        }
    }
    Ok(conditions)
}

fn condition_values(value: &Value) -> Option<Vec<String>> {
    let scalar = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|value| vec![value]),
    }
}

/// The condition keys of one request, each with one or more values. Keys are stored in lower
/// case; [`RequestContext::set`] takes them in any case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    values: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    /// The global keys of a request: `aws:username`, `aws:userid`, `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:CurrentTime`, `aws:EpochTime`,
    /// `aws:SecureTransport`, and `aws:SourceIp` when the address is known.
    pub fn for_request(
        principal: &crate::credentials::Principal,
        now_ms: i64,
        source_ip: Option<IpAddr>,
        secure_transport: bool,
    ) -> RequestContext {
        let mut context = RequestContext::default();
        context.set("aws:username", [principal.name.clone()]);
        context.set("aws:userid", [principal.principal_id.clone()]);
        context.set("aws:PrincipalArn", [principal.arn.clone()]);
        context.set("aws:PrincipalAccount", [principal.account_id.clone()]);
        let principal_type = if principal.identity_type() == "IAMUser" { "User" } else { principal.identity_type() };
        context.set("aws:PrincipalType", [principal_type.to_string()]);
        context.set("aws:CurrentTime", [iso8601(now_ms)]);
        context.set("aws:EpochTime", [(now_ms / 1000).to_string()]);
        context.set("aws:SecureTransport", [secure_transport.to_string()]);
        if let Some(ip) = source_ip {
            context.set("aws:SourceIp", [ip.to_string()]);
        }
        context
    }

    /// Sets a key (`aws:RequestTag/env`, `aws:TagKeys`, `kinesis:…`) to its values.
    pub fn set<I: IntoIterator<Item = String>>(&mut self, key: &str, values: I) {
        self.values.insert(key.to_ascii_lowercase(), values.into_iter().collect());
    }

    /// Sets `aws:RequestTag/<key>` for each tag a request sets, and `aws:TagKeys`.
    pub fn set_request_tags<'a>(&mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut keys = Vec::new();
        for (key, value) in tags {
            self.set(&format!("aws:RequestTag/{key}"), [value.to_string()]);
            keys.push(key.to_string());
        }
        self.set("aws:TagKeys", keys);
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

impl Condition {
    /// Whether the condition holds for a request whose value for this key is `request`
    /// (`None`: the key is absent).
    pub fn holds(&self, request: Option<&[String]>) -> bool {
        if self.operator == Op::Null {
            let absent = request.is_none_or(<[String]>::is_empty);
            return self.values.iter().any(|value| parse_bool(value) == Some(absent));
        }
        let request = match request {
            Some(values) if !values.is_empty() => values,
            _ => {
                return match self.qualifier {
                    SetQualifier::ForAllValues => true,
                    SetQualifier::ForAnyValue => false,
                    SetQualifier::None => self.if_exists || self.operator.negated(),
                };
            }
        };
        // Whether one request value matches any policy value, in the operator's positive form.
        let hit = |value: &String| self.values.iter().any(|policy| self.operator.compare(value, policy));
        // For a negated operator a request value "satisfies" the condition when it hits none.
        let satisfies = |value: &String| hit(value) != self.operator.negated();
        match self.qualifier {
            SetQualifier::ForAllValues => request.iter().all(satisfies),
            SetQualifier::ForAnyValue => request.iter().any(satisfies),
            // A single-valued use of a multi-valued key: positive operators need one hit,
            // negated ones need no value to hit.
            SetQualifier::None => {
                if self.operator.negated() {
                    !request.iter().any(hit)
                } else {
                    request.iter().any(hit)
                }
            }
        }
    }
}

/// Whether every condition of a statement holds in `context`, with `extra` keys (the
/// resource's `aws:ResourceTag/…`) consulted first.
pub fn all_hold(conditions: &[Condition], context: &RequestContext, extra: &RequestContext) -> bool {
    conditions
        .iter()
        .all(|condition| condition.holds(extra.get(&condition.key).or_else(|| context.get(&condition.key))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(block: Value, key_values: &[(&str, &[&str])]) -> bool {
        let conditions = parse_block(&block).unwrap();
        let mut context = RequestContext::default();
        for (key, values) in key_values {
            context.set(key, values.iter().map(|v| v.to_string()));
        }
        all_hold(&conditions, &context, &RequestContext::default())
    }

    #[test]
    fn string_operators() {
        let user = [("aws:username", &["alice"][..])];
        assert!(holds(json!({"StringEquals": {"aws:username": "alice"}}), &user));
        assert!(holds(json!({"StringEquals": {"AWS:UserName": ["bob", "alice"]}}), &user));
        assert!(!holds(json!({"StringEquals": {"aws:username": "Alice"}}), &user));
        assert!(holds(json!({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}), &user));
        assert!(holds(json!({"StringNotEquals": {"aws:username": ["bob", "carol"]}}), &user));
        assert!(!holds(json!({"StringNotEquals": {"aws:username": ["bob", "alice"]}}), &user));
        assert!(holds(json!({"StringLike": {"aws:username": "al*"}}), &user));
        assert!(holds(json!({"StringNotLike": {"aws:username": "b?b"}}), &user));
        assert!(!holds(json!({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}), &user));
    }

    #[test]
    fn missing_keys_follow_iam() {
        assert!(!holds(json!({"StringEquals": {"aws:username": "alice"}}), &[]));
        assert!(holds(json!({"StringEqualsIfExists": {"aws:username": "alice"}}), &[]));
        assert!(holds(json!({"StringNotEquals": {"aws:username": "alice"}}), &[]));
        assert!(holds(json!({"ForAllValues:StringEquals": {"aws:TagKeys": "env"}}), &[]));
        assert!(!holds(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}}), &[]));
        assert!(holds(json!({"Null": {"aws:SourceIp": "true"}}), &[]));
        assert!(!holds(json!({"Null": {"aws:SourceIp": false}}), &[]));
        assert!(holds(json!({"Null": {"aws:SourceIp": false}}), &[("aws:SourceIp", &["10.0.0.1"])]));
    }

    #[test]
    fn numeric_date_bool_and_ip_operators() {
        let epoch = [("aws:EpochTime", &["1700000000"][..])];
        assert!(holds(json!({"NumericLessThan": {"aws:EpochTime": 1800000000}}), &epoch));
        assert!(!holds(json!({"NumericGreaterThan": {"aws:EpochTime": "1800000000"}}), &epoch));
        assert!(holds(json!({"NumericGreaterThanEquals": {"aws:EpochTime": "1700000000"}}), &epoch));
        assert!(holds(json!({"NumericNotEquals": {"aws:EpochTime": 1}}), &epoch));
        let now = [("aws:CurrentTime", &["2026-12-01T10:00:00Z"][..])];
        assert!(holds(json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}), &now));
        assert!(holds(
            json!({"DateLessThanEquals": {"aws:CurrentTime": "2026-12-01"}}),
            &[("aws:CurrentTime", &["2026-12-01T00:00:00Z"])]
        ));
        assert!(!holds(json!({"DateLessThan": {"aws:CurrentTime": "2026-12-01"}}), &now));
        assert!(holds(json!({"DateEquals": {"aws:CurrentTime": "1796119200"}}), &now));
        let tls = [("aws:SecureTransport", &["false"][..])];
        assert!(holds(json!({"Bool": {"aws:SecureTransport": false}}), &tls));
        assert!(!holds(json!({"Bool": {"aws:SecureTransport": "true"}}), &tls));
        let ip = [("aws:SourceIp", &["203.0.113.7"][..])];
        assert!(holds(json!({"IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.0/24"]}}), &ip));
        assert!(holds(json!({"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}), &ip));
        assert!(holds(json!({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}), &ip));
        assert!(holds(json!({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}), &[("aws:SourceIp", &["2001:db8::1"])]));
    }

    #[test]
    fn arn_operators_match_part_by_part() {
        let arn = [("aws:PrincipalArn", &["arn:aws:iam::123456789012:user/team/alice"][..])];
        assert!(holds(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/team/*"}}), &arn));
        assert!(holds(json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/team/alice"}}), &arn));
        assert!(!holds(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}), &arn));
        assert!(holds(json!({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}), &arn));
        // The service part must match on its own: a `*` cannot swallow colons across parts.
        assert!(!holds(json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam*user/team/alice"}}), &arn));
    }

    #[test]
    fn set_qualifiers_compare_value_by_value() {
        let keys = [("aws:TagKeys", &["env", "team"][..])];
        assert!(holds(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team", "owner"]}}), &keys));
        assert!(!holds(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}), &keys));
        assert!(holds(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}), &keys));
        assert!(!holds(json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}), &keys));
        assert!(holds(json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env"]}}), &keys));
        assert!(!holds(json!({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["env"]}}), &keys));
        // Every operator and key of one block must hold.
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}, "StringEquals": {"aws:username": "x"}}),
            &keys
        ));
    }

    #[test]
    fn refuses_bad_blocks() {
        for (block, expected) in [
            (json!({"StringEqualz": {"aws:username": "a"}}), "Invalid Condition type : StringEqualz"),
            (json!({"NullIfExists": {"aws:username": "true"}}), "Invalid Condition type : NullIfExists"),
            (json!({"NumericLessThan": {"aws:EpochTime": "soon"}}), "Invalid value for condition NumericLessThan key aws:EpochTime: soon"),
            (json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}), "Invalid value for condition IpAddress key aws:SourceIp: 10.0.0.0/33"),
            (json!({"Bool": {"aws:SecureTransport": "yes"}}), "Invalid value for condition Bool key aws:SecureTransport: yes"),
            (json!({"StringEquals": {"username": "a"}}), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
            (json!({"StringEquals": {"aws:username": {"a": 1}}}), "Condition StringEquals key aws:username must have a string, number or boolean value, or a list of them"),
            (json!(["x"]), "Condition must be an object"),
        ] {
            assert_eq!(parse_block(&block).unwrap_err().to_string(), expected);
        }
    }
}
