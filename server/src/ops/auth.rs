//! Who is calling, and whether they may: the one place an authenticated caller is checked
//! against a request's IAM action and resources (`Request::iam_checks` in the model), before
//! the request runs. Both protocols pass through [`authorize`] via
//! [`dispatch::execute`](crate::ops::dispatch::execute).
//!
//! The protocols authenticate (`net/`: SigV4 over HTTP, the challenge-response natively) and
//! hand over a [`Caller`]; this module evaluates the caller's identity policies from the
//! credentials file (`sluice_security::policy`, IAM's rules: explicit deny, then allow, else
//! deny) on every resource the request touches, with the request's condition keys
//! (`aws:SourceIp`, `aws:SecureTransport`, `aws:CurrentTime`, the principal's keys,
//! `aws:RequestTag/…` and `aws:TagKeys` of tagging calls, `aws:ResourceTag/…` from the
//! stream's or consumer's tags).

use crate::kinesis::paging::decode_next_token;
use crate::kinesis::shard_iterator;
use crate::ops::node::Node;
use crate::runtime::routes::Routes;
use sluice_model::iam::IamResource;
use sluice_model::Identity;
use sluice_model::{ErrorKind, KinesisError, Request, TagMap};
use sluice_protocol::native::ForwardedCaller;
use sluice_security::credentials::Principal;
use sluice_security::policy::{self, AuthzRequest, Policy, RequestContext, ResourceRef};
use std::net::IpAddr;
use std::sync::Arc;

/// The caller of a request, as its protocol authenticated it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials were checked: the daemon runs without `--credentials` (open mode), and
    /// every caller may do everything.
    Anonymous,
    /// A principal of the credentials file whose signature (or handshake) was verified.
    Principal(Authenticated),
}

/// A verified caller and what its policies' conditions may ask about the call.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Arc<Principal>,
    /// Where the call came from (`aws:SourceIp`; the audit log's fields).
    pub source: CallSource,
    /// Whether the call came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

/// Where a call came from, as its protocol saw it.
#[derive(Debug, Clone, Default)]
pub struct CallSource {
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The id the protocol answers with (HTTP's `x-amzn-RequestId`), if it has one.
    pub request_id: Option<String>,
}

impl Caller {
    /// What a request another cluster member forwards says of its caller (`None`: anonymous).
    pub fn carried(&self) -> Option<ForwardedCaller> {
        let Caller::Principal(authenticated) = self else { return None };
        Some(ForwardedCaller {
            access_key_id: authenticated.principal.access_key_id.clone(),
            source_ip: authenticated.source.source_ip.map(|ip| ip.to_string()),
            secure_transport: authenticated.secure_transport,
            user_agent: authenticated.source.user_agent.clone(),
            request_id: authenticated.source.request_id.clone(),
        })
    }

    /// The principal, if the caller was authenticated.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        match self {
            Caller::Anonymous => None,
            Caller::Principal(authenticated) => Some(&authenticated.principal),
        }
    }
}

/// Checks `caller` against every action and resource `request` needs
/// (`request.iam_checks(identity)`); AccessDeniedException, with AWS's message, when the
/// caller's policies do not allow one of them. An anonymous caller (open mode) may do
/// everything.
///
/// Resources the model leaves to the server are resolved here from the routes snapshot (no
/// cross-core call): a consumer named by stream and name gets its ARN, GetRecords' stream
/// comes from its (signed) shard iterator, a ListShards continuation's from its token. When
/// such a request names no resource we can find (a forged iterator, a garbled token), no
/// resource can be named and the request is checked against `*`.
///
/// A stream's or consumer's resource policy (PutResourcePolicy) is evaluated with the caller's
/// identity policies, as IAM does within one account: an explicit deny in either refuses, an
/// allow in either grants.
pub fn authorize(node: &Node, caller: &Caller, request: &Request) -> Result<(), KinesisError> {
    let Caller::Principal(authenticated) = caller else { return Ok(()) };
    let identity = node.identity();
    let principal = &current_principal(node, &authenticated.principal)?;
    let mut context = RequestContext::for_request(
        principal,
        node.now_ms(),
        authenticated.source.source_ip,
        authenticated.secure_transport,
    );
    if let Some(tags) = request_tags(request) {
        context.set_request_tags(tags.iter().map(|(key, value)| (key.as_str(), value.as_str())));
    }
    for check in request.iam_checks(identity) {
        let mut resources: Vec<Resolved> =
            check.resources.iter().filter_map(|resource| resolve(node, request, resource)).collect();
        if resources.is_empty() {
            // Fail closed: a request whose resource cannot be named (a forged iterator, a
            // garbled token) is checked as if on every resource, so only a principal allowed
            // the action everywhere gets as far as the operation's own refusal.
            resources.push(match continuation_stream(node, request) {
                Some(name) => Resolved::stream(&node.routes(), identity, &name),
                None => Resolved::bare("*".to_string()),
            });
        }
        let refs: Vec<ResourceRef<'_>> = resources
            .iter()
            .map(|resolved| ResourceRef {
                arn: &resolved.arn,
                policy: resolved.policy.as_deref(),
                tags: resolved.tags.as_ref(),
            })
            .collect();
        let asked = AuthzRequest::of(principal, check.action, &context);
        policy::authorize(&asked, &refs)
            .map_err(|denied| KinesisError::new(ErrorKind::AccessDenied, denied.to_string()))?;
    }
    Ok(())
}

/// Checks `caller` for `action` on every ARN of `resources`: the calls served outside the
/// Kinesis model (Firehose's delivery streams, Kinesis channels), whose resources carry no
/// tags or resource policies in Sluice, so their ARNs are all the policies see.
/// `request_tags` are the tags the call sets (`aws:RequestTag/…`, `aws:TagKeys`). An
/// anonymous caller (open mode) may do everything.
pub fn authorize_arns<'a>(
    node: &Node,
    caller: &Caller,
    action: &str,
    resources: &[String],
    request_tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), KinesisError> {
    let Caller::Principal(authenticated) = caller else { return Ok(()) };
    let principal = &current_principal(node, &authenticated.principal)?;
    let mut context = RequestContext::for_request(
        principal,
        node.now_ms(),
        authenticated.source.source_ip,
        authenticated.secure_transport,
    );
    let request_tags: Vec<(&str, &str)> = request_tags.into_iter().collect();
    if !request_tags.is_empty() {
        context.set_request_tags(request_tags);
    }
    // Fail closed: a call naming no resource is checked as if on every resource.
    let star = ["*".to_string()];
    let resources = if resources.is_empty() { &star[..] } else { resources };
    let refs: Vec<ResourceRef<'_>> =
        resources.iter().map(|arn| ResourceRef { arn, policy: None, tags: None }).collect();
    let asked = AuthzRequest::of(principal, action, &context);
    policy::authorize(&asked, &refs).map_err(|denied| KinesisError::new(ErrorKind::AccessDenied, denied.to_string()))
}

/// The caller's principal as the credentials file says now. A native connection authenticates
/// once and may outlive a credentials reload (SIGHUP): its next request is authorized by the
/// principal's current policies, and refused as an unknown key if the key is gone or its secret
/// or session token changed.
fn current_principal(node: &Node, authenticated: &Arc<Principal>) -> Result<Arc<Principal>, KinesisError> {
    let Some(credentials) = &node.shared.config.security.credentials else { return Ok(authenticated.clone()) };
    // A cluster member (its key is not in the credentials file, and is not reloaded): it has
    // no policies, so its own requests are denied as anyone's without an allow.
    let members = node.shared.config.security.members.as_ref();
    if let Some(member) = members.and_then(|members| members.store.shared(&authenticated.access_key_id)) {
        if Arc::ptr_eq(&member, authenticated) {
            return Ok(member);
        }
    }
    let store = credentials.current();
    match store.shared(&authenticated.access_key_id) {
        Some(current) if Arc::ptr_eq(&current, authenticated) => Ok(current),
        Some(current)
            if current.secret_access_key().expose() == authenticated.secret_access_key().expose()
                && current.session_token().map(|token| token.expose())
                    == authenticated.session_token().map(|token| token.expose()) =>
        {
            Ok(current)
        }
        _ => Err(KinesisError::new(ErrorKind::UnrecognizedClient, sluice_security::sigv4::TOKEN_INVALID)),
    }
}

/// The tags a tagging call sets (`aws:RequestTag/…`, `aws:TagKeys`).
fn request_tags(request: &Request) -> Option<&TagMap> {
    match request {
        Request::CreateStream(input) => input.tags.as_ref(),
        Request::AddTagsToStream(input) => Some(&input.tags),
        Request::TagResource(input) => Some(&input.tags),
        Request::RegisterStreamConsumer(input) => input.tags.as_ref(),
        _ => None,
    }
}

/// A resource as the policies see it.
struct Resolved {
    /// The ARN policies match.
    arn: String,
    /// Its tags, if it exists (`aws:ResourceTag/…`).
    tags: Option<TagMap>,
    /// Its resource policy, if it has one.
    policy: Option<Arc<Policy>>,
}

impl Resolved {
    fn bare(arn: String) -> Resolved {
        Resolved { arn, tags: None, policy: None }
    }

    /// A stream's ARN, with its tags and policy if it exists.
    fn stream(routes: &Routes, identity: &Identity, name: &str) -> Resolved {
        let route = routes.streams.get(name);
        Resolved {
            arn: identity.stream_arn(name).as_str().to_string(),
            tags: route.map(|route| route.meta.tags.clone()),
            policy: route.and_then(|route| route.policy.clone()),
        }
    }
}

/// A resource's ARN as policies match it, with its tags and resource policy if it exists.
fn resolve(node: &Node, request: &Request, resource: &IamResource) -> Option<Resolved> {
    let identity = node.identity();
    let routes = node.routes();
    match resource {
        IamResource::Any => Some(Resolved::bare("*".to_string())),
        IamResource::Stream(arn) => Some(match identity.stream_name_of(arn) {
            // As the caller spelled it (the partition or region of a foreign ARN included).
            Ok(name) => Resolved { arn: arn.as_str().to_string(), ..Resolved::stream(&routes, identity, name) },
            Err(_) => Resolved::bare(arn.as_str().to_string()),
        }),
        IamResource::Consumer(arn) => {
            let found = identity.consumer_of(arn).ok().and_then(|name| {
                let route = routes.streams.get(&name.stream)?;
                let meta = route.meta.consumers.iter().find(|meta| meta.name == name.consumer)?;
                Some((meta.tags.clone(), route.consumer_policies.get(&meta.name).cloned()))
            });
            let (tags, policy) = found.map_or((None, None), |(tags, policy)| (Some(tags), policy));
            Some(Resolved { arn: arn.as_str().to_string(), tags, policy })
        }
        IamResource::ConsumerByName { stream_arn, consumer_name } => {
            let stream = identity.stream_name_of(stream_arn).ok()?;
            let route = routes.streams.get(stream);
            let meta = route.and_then(|route| route.meta.consumers.iter().find(|meta| &meta.name == consumer_name));
            match (route, meta) {
                (Some(route), Some(meta)) => Some(Resolved {
                    arn: identity.consumer_arn(stream, consumer_name, meta.created_ms).as_str().to_string(),
                    tags: Some(meta.tags.clone()),
                    policy: route.consumer_policies.get(consumer_name).cloned(),
                }),
                // No such consumer: its ARN would carry a registration time; the operation
                // answers ResourceNotFoundException after this check, so check the name
                // without one (a policy on `…/consumer/*` or `*` matches it).
                _ => Some(Resolved::bare(format!("{}/consumer/{consumer_name}", stream_arn.as_str()))),
            }
        }
        // Unfinished: queue tags (`aws:ResourceTag/…`) and queue resource policies: queues have
        // neither yet.
        IamResource::Queue(arn) => Some(Resolved::bare(arn.clone())),
        IamResource::ShardIteratorStream => {
            let Request::GetRecords(input) = request else { return None };
            let stream = shard_iterator::stream_of(&input.shard_iterator, &node.shared.iterator_key())?;
            Some(Resolved::stream(&routes, identity, &stream))
        }
    }
}

/// ListShards continued by `NextToken` alone names its stream inside the token, which the
/// model cannot read.
fn continuation_stream(node: &Node, request: &Request) -> Option<String> {
    let Request::ListShards(input) = request else { return None };
    if input.stream_name.is_some() || input.stream_arn.is_some() {
        return None;
    }
    let scoped = decode_next_token(input.next_token.as_deref()?, "shards", node.now_ms()).ok()?;
    let (stream, _) = scoped.split_once('\n')?;
    Some(stream.to_string())
}
