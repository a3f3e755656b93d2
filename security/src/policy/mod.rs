//! IAM-style policy documents: parsing and validation (AWS's grammar), and evaluation as IAM
//! does it for a request within one account.
//!
//! - [`Policy::parse`] reads a JSON document (`Version`, `Id`, `Statement` as an object or a
//!   list; per statement `Sid`, `Effect`, `Principal`/`NotPrincipal` in resource policies,
//!   `Action`/`NotAction`, `Resource`/`NotResource`, `Condition`) and refuses what
//!   PutResourcePolicy or IAM would refuse, with IAM's texts where IAM has them.
//! - [`evaluate`] and [`authorize`] decide a request: an explicit Deny in any applicable
//!   policy wins; otherwise an Allow from an identity policy or from the resource's policy
//!   grants; otherwise it is implicitly denied. [`AccessDenied`] carries AWS's message.
//! - [`condition`]: the condition operators and the request context they read.

pub mod condition;
mod evaluate;
pub mod wildcard;

pub use condition::{Condition, ConditionOperator, RequestContext, SetQualifier};
pub use evaluate::{authorize, evaluate, AccessDenied, AuthzRequest, Decision, DenyReason, ResourceRef};

use crate::limits::{POLICY_STATEMENTS_MAX, RESOURCE_POLICY_CHARS_MAX};
use serde_json::{Map, Value};

/// Where a policy is attached: to a principal (identity policy; no `Principal` element) or
/// to a stream or consumer (resource policy; `Principal` required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or its negation (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternList {
    pub patterns: Vec<String>,
    pub negated: bool,
}

/// The `Principal` (or `NotPrincipal`) of a resource-policy statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalList {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    pub anyone: bool,
    /// IAM principal ARNs named exactly.
    pub arns: Vec<String>,
    /// Accounts named (`"123456789012"` or `arn:aws:iam::123456789012:root`): for a request
    /// from that account this delegates to its identity policies rather than granting alone.
    pub accounts: Vec<String>,
    pub negated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<PrincipalList>,
    pub actions: PatternList,
    /// `None` only in resource policies, where a missing `Resource` means the resource the
    /// policy is attached to.
    pub resources: Option<PatternList>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
    /// The document as given, for GetResourcePolicy to return unchanged.
    pub text: String,
}

/// Why a document was refused. PutResourcePolicy answers these as InvalidArgumentException.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Policy size {chars} exceeds the maximum allowed size of {chars_max} characters")]
    TooLarge { chars: usize, chars_max: usize },
    #[error("{0}")]
    Malformed(String),
}

impl PolicyError {
    /// The Kinesis exception PutResourcePolicy answers with.
    pub fn exception_name(&self) -> &'static str {
        "InvalidArgumentException"
    }
}

/// Twelve decimal digits.
pub(crate) fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The account of an IAM user, role or root ARN.
pub fn parse_iam_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let ok = is_account_id(account)
        && (resource == "root"
            || resource.strip_prefix("user/").is_some_and(|n| !n.is_empty())
            || resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()));
    ok.then(|| account.to_string())
}

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(message.into())
}

/// The policy language versions IAM knows. 2008-10-17 lacks policy variables, which Sluice
/// does not substitute anyway, so both read the same.
pub const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let chars = text.chars().count();
        if chars > RESOURCE_POLICY_CHARS_MAX {
            return Err(PolicyError::TooLarge { chars, chars_max: RESOURCE_POLICY_CHARS_MAX });
        }
        let document: Value = serde_json::from_str(text).map_err(|_| malformed("This policy contains invalid Json"))?;
        let Value::Object(document) = document else {
            return Err(malformed("This policy contains invalid Json"));
        };
        for key in document.keys() {
            if !["Version", "Id", "Statement"].contains(&key.as_str()) {
                return Err(malformed(format!("Policy document contains an unknown element: {key}")));
            }
        }
        let version = match document.get("Version") {
            None => None,
            Some(Value::String(version)) if VERSIONS.contains(&version.as_str()) => Some(version.clone()),
            Some(other) => {
                return Err(malformed(format!(
                    "The policy Version {} is not supported; use \"2012-10-17\"",
                    compact(other)
                )))
            }
        };
        let id = match document.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(malformed("Id must be a string")),
        };
        let statements = match document.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(Value::Object(statement)) => vec![parse_statement(statement, kind)?],
            Some(Value::Array(list)) => {
                if list.len() > POLICY_STATEMENTS_MAX {
                    return Err(malformed(format!("A policy holds at most {POLICY_STATEMENTS_MAX} statements")));
                }
                let mut statements = Vec::with_capacity(list.len());
                for item in list {
                    let Value::Object(statement) = item else {
                        return Err(malformed("Each Statement must be an object"));
                    };
                    statements.push(parse_statement(statement, kind)?);
                }
                statements
            }
            Some(_) => return Err(malformed("Statement must be an object or a list of objects")),
        };
        if statements.is_empty() {
            return Err(malformed("Missing required field Statement"));
        }
        let mut sids: Vec<&str> =
            statements.iter().filter_map(|s| s.sid.as_deref()).filter(|s| !s.is_empty()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(malformed("Statement IDs (SID) in a single policy must be unique."));
        }
        Ok(Policy { kind, version, id, statements, text: text.to_string() })
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 64 {
        format!("{}…", text.chars().take(64).collect::<String>())
    } else {
        text
    }
}

const STATEMENT_KEYS: [&str; 9] =
    ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

fn parse_statement(statement: &Map<String, Value>, kind: PolicyKind) -> Result<Statement, PolicyError> {
    for key in statement.keys() {
        if !STATEMENT_KEYS.contains(&key.as_str()) {
            return Err(malformed(format!("Statement contains an unknown element: {key}")));
        }
    }
    let sid = match statement.get("Sid") {
        None => None,
        Some(Value::String(sid)) => {
            if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(malformed(
                    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                ));
            }
            Some(sid.clone())
        }
        Some(_) => return Err(malformed("Sid must be a string")),
    };
    let effect = match statement.get("Effect") {
        None => return Err(malformed("Missing required field Effect")),
        Some(Value::String(effect)) if effect == "Allow" => Effect::Allow,
        Some(Value::String(effect)) if effect == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(malformed(format!(
                "Invalid effect: {}",
                other.as_str().map_or_else(|| compact(other), str::to_string)
            )))
        }
    };
    let principal = match (statement.get("Principal"), statement.get("NotPrincipal"), kind) {
        (None, None, PolicyKind::Identity) => None,
        (_, _, PolicyKind::Identity) => return Err(malformed("Policy document should not specify a principal.")),
        (Some(_), Some(_), _) => return Err(malformed("Statement cannot have both Principal and NotPrincipal")),
        (None, None, PolicyKind::Resource) => return Err(malformed("Missing required field Principal")),
        (Some(value), None, _) => Some(parse_principal(value, false)?),
        (None, Some(value), _) => Some(parse_principal(value, true)?),
    };
    let actions = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(_), Some(_)) => return Err(malformed("Statement cannot have both Action and NotAction")),
        (None, None) => return Err(malformed("Policy statement must contain actions.")),
        (Some(value), None) => PatternList { patterns: strings(value, "Action")?, negated: false },
        (None, Some(value)) => PatternList { patterns: strings(value, "NotAction")?, negated: true },
    };
    if actions.patterns.is_empty() {
        return Err(malformed("Policy statement must contain actions."));
    }
    for action in &actions.patterns {
        check_action(action)?;
    }
    let resources = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(_), Some(_)) => return Err(malformed("Statement cannot have both Resource and NotResource")),
        (None, None) if kind == PolicyKind::Identity => {
            return Err(malformed("Policy statement must contain resources."))
        }
        (None, None) => None,
        (Some(value), None) => Some(PatternList { patterns: strings(value, "Resource")?, negated: false }),
        (None, Some(value)) => Some(PatternList { patterns: strings(value, "NotResource")?, negated: true }),
    };
    if let Some(resources) = &resources {
        if resources.patterns.is_empty() {
            return Err(malformed("Policy statement must contain resources."));
        }
        for resource in &resources.patterns {
            if resource != "*" && !resource.starts_with("arn:") {
                return Err(malformed(format!("Resource {resource} must be in ARN format or \"*\".")));
            }
        }
    }
    let conditions = match statement.get("Condition") {
        None => Vec::new(),
        Some(value) => condition::parse_block(value)?,
    };
    Ok(Statement { sid, effect, principal, actions, resources, conditions })
}

/// A string or a list of strings (IAM's `Action`, `Resource` and principal values).
fn strings(value: &Value, element: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed(format!("{element} must be a string or a list of strings")))
            })
            .collect(),
        _ => Err(malformed(format!("{element} must be a string or a list of strings"))),
    }
}

/// `*`, or `vendor:action` with a vendor of letters, digits and dashes (no wildcards).
// Unfinished: policy variables (`${aws:username}` inside a `Resource` or a condition value)
// are matched literally, not substituted.
fn check_action(action: &str) -> Result<(), PolicyError> {
    if action == "*" {
        return Ok(());
    }
    let vendor_ok = action.split_once(':').is_some_and(|(vendor, name)| {
        !vendor.is_empty() && !name.is_empty() && vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if vendor_ok {
        Ok(())
    } else {
        Err(malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."))
    }
}

fn parse_principal(value: &Value, negated: bool) -> Result<PrincipalList, PolicyError> {
    let mut list = PrincipalList { anyone: false, arns: Vec::new(), accounts: Vec::new(), negated };
    match value {
        Value::String(star) if star == "*" => list.anyone = true,
        Value::Object(map) => {
            for (kind, values) in map {
                let values = strings(values, "Principal")?;
                match kind.as_str() {
                    "AWS" => {
                        for value in values {
                            if value == "*" {
                                list.anyone = true;
                            } else if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
                                list.accounts.push(value);
                            } else if let Some(account) =
                                value.strip_prefix("arn:aws:iam::").and_then(|rest| rest.strip_suffix(":root"))
                            {
                                list.accounts.push(account.to_string());
                            } else if parse_iam_arn(&value).is_some() {
                                list.arns.push(value);
                            } else {
                                return Err(malformed(format!("Invalid principal in policy: \"AWS\":\"{value}\"")));
                            }
                        }
                    }
                    // Other principal kinds are valid IAM but never match a Sluice caller.
                    "Service" | "Federated" | "CanonicalUser" => {}
                    other => return Err(malformed(format!("Invalid principal in policy: \"{other}\""))),
                }
            }
        }
        _ => {
            return Err(malformed(
                "Principal must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:user/name\"}",
            ))
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str, kind: PolicyKind) -> String {
        Policy::parse(text, kind).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_grammar() {
        let policy = Policy::parse(
            r#"{
              "Version": "2012-10-17",
              "Id": "orders-policy",
              "Statement": [
                {"Sid": "Read", "Effect": "Allow", "Action": ["kinesis:Get*", "kinesis:DescribeStream"], "Resource": "arn:aws:kinesis:*:*:stream/orders"},
                {"Effect": "Deny", "NotAction": "kinesis:List*", "NotResource": ["arn:aws:kinesis:*:*:stream/orders"],
                 "Condition": {"Bool": {"aws:SecureTransport": false}}}
              ]
            }"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(policy.statements.len(), 2);
        assert_eq!(policy.id.as_deref(), Some("orders-policy"));
        assert!(policy.statements[1].actions.negated && policy.statements[1].resources.as_ref().unwrap().negated);
        assert_eq!(policy.statements[1].conditions.len(), 1);

        let single = Policy::parse(
            r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:user/a", "123456789012"]}, "Action": "kinesis:PutRecord"}}"#,
            PolicyKind::Resource,
        )
        .unwrap();
        let principal = single.statements[0].principal.as_ref().unwrap();
        assert_eq!(principal.arns, ["arn:aws:iam::123456789012:user/a"]);
        assert_eq!(principal.accounts, ["123456789012"]);
        assert!(single.statements[0].resources.is_none());
    }

    #[test]
    fn refuses_what_iam_refuses_with_its_texts() {
        use PolicyKind::{Identity, Resource};
        let allow = r#""Effect": "Allow", "Action": "kinesis:*", "Resource": "*""#;
        for (text, kind, expected) in [
            ("{", Identity, "This policy contains invalid Json"),
            ("[]", Identity, "This policy contains invalid Json"),
            ("{}", Identity, "Missing required field Statement"),
            (r#"{"Statement": []}"#, Identity, "Missing required field Statement"),
            (r#"{"Version": "2024-01-01", "Statement": []}"#, Identity, "The policy Version \"2024-01-01\" is not supported; use \"2012-10-17\""),
            (r#"{"Statement": {"Action": "kinesis:*", "Resource": "*"}}"#, Identity, "Missing required field Effect"),
            (r#"{"Statement": {"Effect": "Permit", "Action": "kinesis:*", "Resource": "*"}}"#, Identity, "Invalid effect: Permit"),
            (r#"{"Statement": {"Effect": "Allow", "Resource": "*"}}"#, Identity, "Policy statement must contain actions."),
            (r#"{"Statement": {"Effect": "Allow", "Action": "kinesis:*"}}"#, Identity, "Policy statement must contain resources."),
            (r#"{"Statement": {"Effect": "Allow", "Action": "PutRecord", "Resource": "*"}}"#, Identity, "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
            (r#"{"Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "stream/orders"}}"#, Identity, "Resource stream/orders must be in ARN format or \"*\"."),
            (&format!(r#"{{"Statement": {{"Principal": "*", {allow}}}}}"#), Identity, "Policy document should not specify a principal."),
            (&format!(r#"{{"Statement": {{{allow}}}}}"#), Resource, "Missing required field Principal"),
            (&format!(r#"{{"Statement": [{{"Sid": "A", {allow}}}, {{"Sid": "A", {allow}}}]}}"#), Identity, "Statement IDs (SID) in a single policy must be unique."),
            (&format!(r#"{{"Statement": {{"Sid": "a b", {allow}}}}}"#), Identity, "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"),
            (&format!(r#"{{"Statement": {{"Condition": {{"StringEqualz": {{"aws:username": "a"}}}}, {allow}}}}}"#), Identity, "Invalid Condition type : StringEqualz"),
            (&format!(r#"{{"Statement": {{"Principal": {{"AWS": "bob"}}, {allow}}}}}"#), Resource, "Invalid principal in policy: \"AWS\":\"bob\""),
            (&format!(r#"{{"Statement": {{"Effect2": "x", {allow}}}}}"#), Identity, "Statement contains an unknown element: Effect2"),
        ] {
            assert_eq!(error(text, kind), expected, "{text}");
        }
    }

    #[test]
    fn refuses_documents_over_the_size_limit() {
        let padding = " ".repeat(RESOURCE_POLICY_CHARS_MAX);
        let text = format!(r#"{{"Statement": {{"Effect": "Allow", "Action": "*", "Resource": "*"}}}}{padding}"#);
        assert!(matches!(
            Policy::parse(&text, PolicyKind::Identity),
            Err(PolicyError::TooLarge { chars_max: 20_480, .. })
        ));
        let exact = r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#.to_string();
        let padded = format!("{exact}{}", " ".repeat(RESOURCE_POLICY_CHARS_MAX - exact.len()));
        assert!(Policy::parse(&padded, PolicyKind::Identity).is_ok());
    }
}
