//! Policy evaluation for a request within one account, as IAM does it:
//!
//! 1. An explicit `Deny` in any applicable statement (identity policies first, then the
//!    resource's policy) denies.
//! 2. Otherwise an `Allow` in an identity policy, or in the resource's policy for a statement
//!    naming this principal (or everyone), allows. A resource-policy statement naming only the
//!    principal's *account* delegates to the account's identity policies: it grants nothing
//!    by itself, as in IAM.
//! 3. Otherwise the request is implicitly denied.

use super::condition::{all_hold, RequestContext};
use super::wildcard::matches;
use super::{Effect, Policy, Statement};
use std::collections::BTreeMap;
use std::fmt;

/// Who asks to do what, with which identity policies and request context.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    pub principal_arn: &'a str,
    pub principal_account: &'a str,
    pub identity_policies: &'a [Policy],
    /// `kinesis:PutRecord`.
    pub action: &'a str,
    pub context: &'a RequestContext,
}

impl<'a> AuthzRequest<'a> {
    /// The request of a principal from the credentials file.
    pub fn of(
        principal: &'a crate::credentials::Principal,
        action: &'a str,
        context: &'a RequestContext,
    ) -> AuthzRequest<'a> {
        AuthzRequest {
            principal_arn: &principal.arn,
            principal_account: &principal.account_id,
            identity_policies: &principal.policies,
            action,
            context,
        }
    }
}

/// One resource a request touches: its ARN, its resource policy, its tags.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef<'a> {
    pub arn: &'a str,
    pub policy: Option<&'a Policy>,
    pub tags: Option<&'a BTreeMap<String, String>>,
}

impl<'a> ResourceRef<'a> {
    pub fn new(arn: &'a str) -> ResourceRef<'a> {
        ResourceRef { arn, policy: None, tags: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    ExplicitIdentity,
    ExplicitResource,
    Implicit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

/// A refusal, with AWS's AccessDeniedException message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AccessDenied {
    pub principal_arn: String,
    pub action: String,
    pub resource: String,
    pub reason: DenyReason,
}

impl AccessDenied {
    pub fn exception_name(&self) -> &'static str {
        "AccessDeniedException"
    }

    pub fn http_status(&self) -> u16 {
        400
    }
}

impl fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AccessDenied { principal_arn, action, resource, reason } = self;
        write!(f, "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} ")?;
        match reason {
            DenyReason::Implicit => write!(f, "because no identity-based policy allows the {action} action"),
            DenyReason::ExplicitIdentity => write!(f, "with an explicit deny in an identity-based policy"),
            DenyReason::ExplicitResource => write!(f, "with an explicit deny in a resource-based policy"),
        }
    }
}

/// How a resource-policy statement's principal applies to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalMatch {
    No,
    /// Named by ARN, or everyone.
    Principal,
    /// Named through its account only.
    Account,
}

fn principal_match(statement: &Statement, request: &AuthzRequest<'_>) -> PrincipalMatch {
    let Some(list) = &statement.principal else { return PrincipalMatch::Principal };
    let by_name = list.anyone || list.arns.iter().any(|arn| arn == request.principal_arn);
    let by_account = list.accounts.iter().any(|account| account == request.principal_account);
    match (list.negated, by_name, by_account) {
        // NotPrincipal: applies to everyone not named (an account names all its principals).
        (true, false, false) => PrincipalMatch::Principal,
        (true, _, _) => PrincipalMatch::No,
        (false, true, _) => PrincipalMatch::Principal,
        (false, false, true) => PrincipalMatch::Account,
        (false, false, false) => PrincipalMatch::No,
    }
}

/// Whether a statement applies to this action on this resource under these conditions
/// (its principal aside).
fn applies(
    statement: &Statement,
    request: &AuthzRequest<'_>,
    resource: &ResourceRef<'_>,
    extra: &RequestContext,
) -> bool {
    let action_hit = statement.actions.patterns.iter().any(|pattern| matches(pattern, request.action, true));
    if action_hit == statement.actions.negated {
        return false;
    }
    if let Some(resources) = &statement.resources {
        let resource_hit = resources.patterns.iter().any(|pattern| matches(pattern, resource.arn, false));
        if resource_hit == resources.negated {
            return false;
        }
    }
    all_hold(&statement.conditions, request.context, extra)
}

/// The decision for one resource.
pub fn evaluate(request: &AuthzRequest<'_>, resource: &ResourceRef<'_>) -> Decision {
    let mut extra = RequestContext::default();
    if let Some(tags) = resource.tags {
        for (key, value) in tags {
            extra.set(&format!("aws:ResourceTag/{key}"), [value.clone()]);
        }
    }
    let identity: Vec<&Statement> = request
        .identity_policies
        .iter()
        .flat_map(|policy| &policy.statements)
        .filter(|statement| applies(statement, request, resource, &extra))
        .collect();
    let on_resource: Vec<(&Statement, PrincipalMatch)> = resource
        .policy
        .into_iter()
        .flat_map(|policy| &policy.statements)
        .map(|statement| (statement, principal_match(statement, request)))
        .filter(|(statement, principal)| {
            *principal != PrincipalMatch::No && applies(statement, request, resource, &extra)
        })
        .collect();
    if identity.iter().any(|statement| statement.effect == Effect::Deny) {
        return Decision::Deny(DenyReason::ExplicitIdentity);
    }
    if on_resource.iter().any(|(statement, _)| statement.effect == Effect::Deny) {
        return Decision::Deny(DenyReason::ExplicitResource);
    }
    let identity_allows = identity.iter().any(|statement| statement.effect == Effect::Allow);
    let resource_allows = on_resource
        .iter()
        .any(|(statement, principal)| statement.effect == Effect::Allow && *principal == PrincipalMatch::Principal);
    if identity_allows || resource_allows {
        Decision::Allow
    } else {
        Decision::Deny(DenyReason::Implicit)
    }
}

/// Allows the request only if every resource it touches allows it; the first refusal is
/// the error.
pub fn authorize(request: &AuthzRequest<'_>, resources: &[ResourceRef<'_>]) -> Result<(), AccessDenied> {
    for resource in resources {
        if let Decision::Deny(reason) = evaluate(request, resource) {
            return Err(AccessDenied {
                principal_arn: request.principal_arn.to_string(),
                action: request.action.to_string(),
                resource: resource.arn.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::PolicyKind;
    use super::*;
    use proptest::prelude::*;

    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    const ORDERS: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
    const AUDIT: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/audit";

    fn identity(text: &str) -> Policy {
        Policy::parse(text, PolicyKind::Identity).unwrap()
    }

    fn resource_policy(text: &str) -> Policy {
        Policy::parse(text, PolicyKind::Resource).unwrap()
    }

    fn decide(policies: &[Policy], action: &str, arn: &str, on_resource: Option<&Policy>) -> Result<(), String> {
        let context = RequestContext::default();
        let request = AuthzRequest {
            principal_arn: ALICE,
            principal_account: "123456789012",
            identity_policies: policies,
            action,
            context: &context,
        };
        authorize(&request, &[ResourceRef { arn, policy: on_resource, tags: None }])
            .map_err(|denied| denied.to_string())
    }

    #[test]
    fn a_get_records_only_principal_can_do_exactly_that() {
        let reader = [identity(&format!(
            r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "kinesis:GetRecords", "Resource": "{ORDERS}"}}}}"#
        ))];
        assert_eq!(decide(&reader, "kinesis:GetRecords", ORDERS, None), Ok(()));
        assert_eq!(decide(&reader, "Kinesis:getrecords", ORDERS, None), Ok(()), "actions match case-insensitively");
        assert_eq!(
            decide(&reader, "kinesis:PutRecord", ORDERS, None),
            Err(format!(
                "User: {ALICE} is not authorized to perform: kinesis:PutRecord on resource: {ORDERS} because no identity-based policy allows the kinesis:PutRecord action"
            ))
        );
        assert!(decide(&reader, "kinesis:GetRecords", AUDIT, None).is_err());
    }

    #[test]
    fn an_explicit_deny_wins_wherever_it_is() {
        let all = identity(r#"{"Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}"#);
        let deny_delete =
            identity(r#"{"Statement": {"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "*"}}"#);
        let policies = [all.clone(), deny_delete];
        assert_eq!(
            decide(&policies, "kinesis:DeleteStream", ORDERS, None),
            Err(format!(
                "User: {ALICE} is not authorized to perform: kinesis:DeleteStream on resource: {ORDERS} with an explicit deny in an identity-based policy"
            ))
        );
        let deny_on_stream =
            resource_policy(r#"{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "kinesis:PutRecord"}}"#);
        assert_eq!(
            decide(std::slice::from_ref(&all), "kinesis:PutRecord", ORDERS, Some(&deny_on_stream)),
            Err(format!(
                "User: {ALICE} is not authorized to perform: kinesis:PutRecord on resource: {ORDERS} with an explicit deny in a resource-based policy"
            ))
        );
        assert_eq!(decide(&[all], "kinesis:GetRecords", ORDERS, Some(&deny_on_stream)), Ok(()));
    }

    #[test]
    fn a_resource_policy_grants_to_named_principals_only() {
        let named = resource_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{ALICE}"}}, "Action": "kinesis:PutRecord", "Resource": "{ORDERS}"}}}}"#
        ));
        assert_eq!(decide(&[], "kinesis:PutRecord", ORDERS, Some(&named)), Ok(()));
        assert!(decide(&[], "kinesis:PutRecords", ORDERS, Some(&named)).is_err());
        let account = resource_policy(
            r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kinesis:*"}}"#,
        );
        assert!(
            decide(&[], "kinesis:PutRecord", ORDERS, Some(&account)).is_err(),
            "an account principal only delegates"
        );
        let other = resource_policy(
            r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "kinesis:*"}}"#,
        );
        assert!(decide(&[], "kinesis:PutRecord", ORDERS, Some(&other)).is_err());
        let all_but_bob = resource_policy(
            r#"{"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "kinesis:*"}}"#,
        );
        assert_eq!(decide(&[], "kinesis:PutRecord", ORDERS, Some(&all_but_bob)), Ok(()));
    }

    #[test]
    fn not_action_and_not_resource() {
        let all_but_delete = identity(
            r#"{"Statement": {"Effect": "Allow", "NotAction": ["kinesis:Delete*", "kinesis:*Policy"], "NotResource": "arn:aws:kinesis:*:*:stream/audit"}}"#,
        );
        let policies = [all_but_delete];
        assert_eq!(decide(&policies, "kinesis:PutRecord", ORDERS, None), Ok(()));
        assert!(decide(&policies, "kinesis:DeleteStream", ORDERS, None).is_err());
        assert!(decide(&policies, "kinesis:PutResourcePolicy", ORDERS, None).is_err());
        assert!(decide(&policies, "kinesis:PutRecord", AUDIT, None).is_err());
    }

    #[test]
    fn conditions_see_the_request_and_the_resource_tags() {
        let policy = [identity(
            r#"{"Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "data", "aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}}}"#,
        )];
        let principal = crate::credentials::Principal::new(
            "alice",
            "123456789012",
            "AKIAALICE",
            crate::Secret::new("s"),
            policy.to_vec(),
        );
        let tags: BTreeMap<String, String> = [("team".to_string(), "data".to_string())].into();
        let other_tags: BTreeMap<String, String> = [("team".to_string(), "web".to_string())].into();
        for (secure, tags, allowed) in [(true, &tags, true), (false, &tags, false), (true, &other_tags, false)] {
            let context = RequestContext::for_request(&principal, 0, None, secure);
            let request = AuthzRequest::of(&principal, "kinesis:PutRecord", &context);
            let resource = ResourceRef { arn: ORDERS, policy: None, tags: Some(tags) };
            assert_eq!(authorize(&request, &[resource]).is_ok(), allowed, "secure {secure}, tags {tags:?}");
        }
    }

    #[test]
    fn every_resource_must_allow() {
        let orders_only = [identity(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Action": "kinesis:*", "Resource": "{ORDERS}*"}}}}"#
        ))];
        let context = RequestContext::default();
        let request = AuthzRequest {
            principal_arn: ALICE,
            principal_account: "123456789012",
            identity_policies: &orders_only,
            action: "kinesis:SubscribeToShard",
            context: &context,
        };
        let consumer = format!("{ORDERS}/consumer/reader:1");
        assert!(authorize(&request, &[ResourceRef::new(ORDERS), ResourceRef::new(&consumer)]).is_ok());
        let denied = authorize(&request, &[ResourceRef::new(ORDERS), ResourceRef::new(AUDIT)]).unwrap_err();
        assert_eq!(denied.resource, AUDIT);
    }

    // The reference evaluator: the same rules written as plainly as possible over a small
    // statement language (no conditions), with wildcards compiled to regular expressions.

    #[derive(Debug, Clone)]
    struct RefStatement {
        deny: bool,
        on_resource: bool,
        principal_named: bool,
        actions: Vec<String>,
        not_action: bool,
        resources: Vec<String>,
        not_resource: bool,
    }

    fn regex_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
        let body: String = pattern
            .chars()
            .map(|c| match c {
                '*' => ".*".to_string(),
                '?' => ".".to_string(),
                c => regex::escape(&c.to_string()),
            })
            .collect();
        regex::RegexBuilder::new(&format!("^{body}$")).case_insensitive(ignore_case).build().unwrap().is_match(text)
    }

    fn reference(statements: &[RefStatement], action: &str, resource: &str) -> Decision {
        let applies = |s: &RefStatement| {
            let a = s.actions.iter().any(|p| regex_match(p, action, true)) != s.not_action;
            let r = s.resources.iter().any(|p| regex_match(p, resource, false)) != s.not_resource;
            a && r && (!s.on_resource || s.principal_named)
        };
        let applicable: Vec<&RefStatement> = statements.iter().filter(|s| applies(s)).collect();
        if applicable.iter().any(|s| s.deny && !s.on_resource) {
            Decision::Deny(DenyReason::ExplicitIdentity)
        } else if applicable.iter().any(|s| s.deny) {
            Decision::Deny(DenyReason::ExplicitResource)
        } else if applicable.iter().any(|s| !s.deny) {
            Decision::Allow
        } else {
            Decision::Deny(DenyReason::Implicit)
        }
    }

    fn to_json(s: &RefStatement) -> String {
        let list = |items: &[String]| serde_json::to_string(items).unwrap();
        let principal = if s.on_resource {
            let who = if s.principal_named { ALICE } else { "arn:aws:iam::123456789012:user/bob" };
            format!(r#""Principal": {{"AWS": "{who}"}},"#)
        } else {
            String::new()
        };
        format!(
            r#"{{"Effect": "{}", {principal} "{}": {}, "{}": {}}}"#,
            if s.deny { "Deny" } else { "Allow" },
            if s.not_action { "NotAction" } else { "Action" },
            list(&s.actions),
            if s.not_resource { "NotResource" } else { "Resource" },
            list(&s.resources)
        )
    }

    fn statement() -> impl Strategy<Value = RefStatement> {
        let action = prop::sample::select(vec![
            "*",
            "kinesis:*",
            "kinesis:Put*",
            "kinesis:putrecord",
            "kinesis:Get?ecords",
            "kinesis:*Stream",
            "kinesis:DeleteStream",
        ]);
        let resource = prop::sample::select(vec![
            "*",
            "arn:aws:kinesis:*:*:stream/orders",
            "arn:aws:kinesis:us-east-1:123456789012:stream/*",
            "arn:aws:kinesis:*:*:stream/o?ders",
            "arn:aws:kinesis:*:*:stream/audit*",
        ]);
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(action, 1..3),
            any::<bool>(),
            prop::collection::vec(resource, 1..3),
            any::<bool>(),
        )
            .prop_map(|(deny, on_resource, principal_named, actions, not_action, resources, not_resource)| {
                RefStatement {
                    deny,
                    on_resource,
                    principal_named,
                    actions: actions.into_iter().map(str::to_string).collect(),
                    not_action,
                    resources: resources.into_iter().map(str::to_string).collect(),
                    not_resource,
                }
            })
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_evaluator(
            statements in prop::collection::vec(statement(), 0..6),
            action in prop::sample::select(vec!["kinesis:PutRecord", "kinesis:GetRecords", "kinesis:DeleteStream", "kinesis:ListShards"]),
            resource in prop::sample::select(vec![ORDERS, AUDIT, "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"]),
        ) {
            let identity_policies: Vec<Policy> = statements
                .iter()
                .filter(|s| !s.on_resource)
                .map(|s| Policy::parse(&format!(r#"{{"Statement": [{}]}}"#, to_json(s)), PolicyKind::Identity).unwrap())
                .collect();
            let resource_statements: Vec<String> = statements.iter().filter(|s| s.on_resource).map(to_json).collect();
            let resource_policy = (!resource_statements.is_empty())
                .then(|| Policy::parse(&format!(r#"{{"Statement": [{}]}}"#, resource_statements.join(",")), PolicyKind::Resource).unwrap());
            let context = RequestContext::default();
            let request = AuthzRequest { principal_arn: ALICE, principal_account: "123456789012", identity_policies: &identity_policies, action, context: &context };
            let decided = evaluate(&request, &ResourceRef { arn: resource, policy: resource_policy.as_ref(), tags: None });
            prop_assert_eq!(decided, reference(&statements, action, resource));
        }
    }
}
