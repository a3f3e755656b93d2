//! Policy documents as PutResourcePolicy receives them: the parser must answer Ok or Err on
//! any text, never panic; an accepted policy must evaluate (without panicking) for a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_security::policy::{evaluate, AuthzRequest, Policy, PolicyKind, RequestContext, ResourceRef};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut context = RequestContext::default();
    context.set("aws:username", ["alice".to_string()]);
    context.set("aws:SourceIp", ["203.0.113.7".to_string()]);
    context.set("aws:CurrentTime", ["2026-12-01T10:00:00Z".to_string()]);
    context.set("aws:TagKeys", ["env".to_string(), "team".to_string()]);
    for kind in [PolicyKind::Identity, PolicyKind::Resource] {
        if let Ok(policy) = Policy::parse(text, kind) {
            let (identity, resource) = match kind {
                PolicyKind::Identity => (std::slice::from_ref(&policy), None),
                PolicyKind::Resource => (&[][..], Some(&policy)),
            };
            let request = AuthzRequest {
                principal_arn: "arn:aws:iam::123456789012:user/alice",
                principal_account: "123456789012",
                identity_policies: identity,
                action: "kinesis:PutRecord",
                context: &context,
            };
            let _ = evaluate(
                &request,
                &ResourceRef {
                    arn: "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
                    policy: resource,
                    tags: None,
                },
            );
        }
    }
});
