//! The AWS-compatible HTTP API: what boto3, the AWS CLI and the AWS SDKs speak.
//!
//! `POST /` with `X-Amz-Target: <service prefix>.<Operation>` and a body in AWS JSON 1.1
//! (`application/x-amz-json-1.1`) or AWS CBOR 1.1 (`application/x-amz-cbor-1.1`, the Java SDKs'
//! default), over HTTP/1.1 or HTTP/2 (cleartext with prior knowledge, as the Java SDK v2 uses
//! for SubscribeToShard). Every core listens on the same address (glommio binds with
//! `SO_REUSEPORT`) and answers on the core that accepted the connection.
//!
//! This module owns what every AWS service on the port shares: connections (hyper on glommio),
//! bounds, request ids, reading bodies, and routing by `X-Amz-Target` prefix to a service
//! ([`Service`]). Each service decodes, runs and encodes its own operations: [`kinesis`] for
//! `Kinesis_20131202`, [`firehose`] for `Firehose_20150804`, [`glue`] for `AWSGlue` (the Data
//! Catalog Parquet conversion reads its tables from).
//!
//! Bounds: request bodies ([`HTTP_BODY_BYTES_MAX`] each, [`HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX`]
//! per core), requests in flight per core, connections per core, HTTP/2 streams per connection,
//! and the time to send request headers and bodies. Any input gets an AWS-shaped answer;
//! nothing a client sends can panic the server.
//!
//! Authentication: with `--credentials`, every request must carry a valid SigV4 signature (the
//! `Authorization` header, or a presigned query string) by a principal of the file; the checks
//! that need no body run before the body is reserved and read, the signature after. A refusal
//! is AWS's (MissingAuthenticationTokenException, IncompleteSignatureException,
//! InvalidSignatureException, UnrecognizedClientException, ExpiredTokenException) in the AWS
//! error shape. Without `--credentials` (open mode) signatures are not looked at and every
//! caller is `Caller::Anonymous`.

pub mod admin;
#[cfg(feature = "firehose")]
pub mod channel_access;
#[cfg(feature = "firehose")]
pub mod channels;
#[cfg(feature = "firehose")]
pub mod firehose;
#[cfg(feature = "firehose")]
pub mod glue;
pub mod kinesis;
pub mod relay;

use crate::limits::{
    HTTP2_STREAMS_PER_CONNECTION_MAX, HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX, HTTP_BODY_BYTES_MAX,
    HTTP_BODY_READ_TIMEOUT_MS, HTTP_HEADER_READ_TIMEOUT_MS, HTTP_REQUESTS_IN_FLIGHT_PER_CORE_MAX,
    TLS_HANDSHAKE_TIMEOUT_MS,
};
use crate::ops::audit;
use crate::ops::auth::{Authenticated, CallSource, Caller};
#[cfg(feature = "firehose")]
use crate::ops::channels::Channels;
#[cfg(feature = "firehose")]
use crate::ops::firehose::Firehose;
use crate::ops::node::Node;
use bytes::{Bytes, BytesMut};
use futures_lite::future;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sluice_hyper_glommio as rt;
use sluice_model::{ErrorKind, KinesisError};
use sluice_protocol::aws::{self, Encoding};
use sluice_security::sigv4::{self, AuthError, SignedRequest, Verifier, VerifyOptions};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
#[cfg(feature = "firehose")]
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// The body of every answer: a whole document, or SubscribeToShard's event stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What one core's HTTP connections share.
pub struct HttpCore {
    node: Rc<Node>,
    #[cfg(feature = "firehose")]
    firehose: Arc<Firehose>,
    #[cfg(feature = "firehose")]
    channels: Arc<Channels>,
    body_bytes: Semaphore,
    requests: Semaphore,
    /// This core's SigV4 verifiers, one per service a request can be signed for (`kinesis`,
    /// `firehose`); per core, so their caches of derived signing keys are uncontended.
    verifier: Verifier,
    #[cfg(feature = "firehose")]
    firehose_verifier: Verifier,
    #[cfg(feature = "firehose")]
    glue_verifier: Verifier,
}

impl HttpCore {
    pub fn new(
        node: Rc<Node>,
        #[cfg(feature = "firehose")] (firehose, channels): (Arc<Firehose>, Arc<Channels>),
    ) -> Rc<HttpCore> {
        let verifier = Verifier::new(node.identity().region(), sigv4::KINESIS_SERVICE);
        #[cfg(feature = "firehose")]
        let firehose_verifier = Verifier::new(node.identity().region(), sigv4::FIREHOSE_SERVICE);
        #[cfg(feature = "firehose")]
        let glue_verifier = Verifier::new(node.identity().region(), glue::SIGNING_SERVICE);
        Rc::new(HttpCore {
            node,
            #[cfg(feature = "firehose")]
            firehose,
            #[cfg(feature = "firehose")]
            channels,
            body_bytes: Semaphore::new(HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX as u64),
            requests: Semaphore::new(HTTP_REQUESTS_IN_FLIGHT_PER_CORE_MAX as u64),
            verifier,
            #[cfg(feature = "firehose")]
            firehose_verifier,
            #[cfg(feature = "firehose")]
            glue_verifier,
        })
    }
}

/// Where a connection comes from, for the policies' condition keys.
#[derive(Debug, Clone, Copy)]
struct Peer {
    address: Option<SocketAddr>,
    /// Whether the connection is TLS (`aws:SecureTransport`; `UNSIGNED-PAYLOAD` only then).
    secure: bool,
}

/// The AWS services this port serves, each with the operation a request's `X-Amz-Target`
/// names. A second service adds a variant, its prefix in [`Service::of_target`], and its arm
/// in [`respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `Kinesis_20131202.<Operation>`.
    Kinesis(sluice_model::Operation),
    /// `Firehose_20150804.<Operation>`.
    #[cfg(feature = "firehose")]
    Firehose(firehose::Operation),
    /// `Kinesis_20131202.<Operation>` for the channel operations, which run on the delivery
    /// engine (`channels`), not through the Kinesis codec.
    #[cfg(feature = "firehose")]
    Channel(channels::Operation),
    /// `AWSGlue.<Operation>`: the Data Catalog.
    #[cfg(feature = "firehose")]
    Glue(glue::Operation),
    /// `SluiceAdmin_20261201.<Operation>`: the cluster's membership.
    Admin(admin::Operation),
}

impl Service {
    /// The service and operation an `X-Amz-Target` names, if this port serves them.
    pub fn of_target(target: &str) -> Option<Service> {
        if let Some(operation) = target.strip_prefix(aws::KINESIS_TARGET_PREFIX) {
            #[cfg(feature = "firehose")]
            if let Some(operation) = channels::Operation::from_name(operation) {
                return Some(Service::Channel(operation));
            }
            return sluice_model::Operation::from_name(operation).filter(|op| !op.is_sluice()).map(Service::Kinesis);
        }
        // Sluice's own operations (consumer-group leases) share the Kinesis dispatch.
        if let Some(operation) = target.strip_prefix(sluice_model::SLUICE_TARGET_PREFIX) {
            return sluice_model::Operation::from_name(operation).filter(|op| op.is_sluice()).map(Service::Kinesis);
        }
        #[cfg(feature = "firehose")]
        if let Some(operation) = target.strip_prefix(firehose::TARGET_PREFIX) {
            return firehose::Operation::from_name(operation).map(Service::Firehose);
        }
        #[cfg(feature = "firehose")]
        if let Some(operation) = target.strip_prefix(glue::TARGET_PREFIX) {
            return glue::Operation::from_name(operation).map(Service::Glue);
        }
        if let Some(operation) = target.strip_prefix(admin::TARGET_PREFIX) {
            return admin::Operation::from_name(operation).map(Service::Admin);
        }
        None
    }
}

/// Serves one connection: HTTP/1.1, or HTTP/2 if it opens with the HTTP/2 preface; over TLS
/// first if the daemon has `--tls-cert` (the certificate of the moment: a reload on SIGHUP
/// applies to connections accepted after it).
pub async fn connection(shared: Rc<HttpCore>, stream: TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "set_nodelay failed");
    }
    let address = stream.peer_addr().ok();
    let Some(tls) = shared.node.shared.config.security.http_tls.clone() else {
        return serve(shared, rt::SocketIo(stream), Peer { address, secure: false }).await;
    };
    let handshake = future::or(async { Some(tls.acceptor().accept(stream).await) }, async {
        glommio::timer::sleep(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS)).await;
        None
    })
    .await;
    match handshake {
        Some(Ok(stream)) => serve(shared, rt::Io(stream), Peer { address, secure: true }).await,
        Some(Err(error)) => tracing::debug!(%error, ?address, "TLS handshake failed"),
        None => tracing::debug!(?address, "TLS handshake timed out"),
    }
}

/// Serves HTTP on a connection (plain: [`rt::SocketIo`]; TLS: [`rt::Io`]).
async fn serve<I>(shared: Rc<HttpCore>, io: I, peer: Peer)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(rt::LocalExec);
    builder
        .http1()
        .timer(rt::GlommioTimer)
        .header_read_timeout(Duration::from_millis(HTTP_HEADER_READ_TIMEOUT_MS))
        .http2()
        .timer(rt::GlommioTimer)
        .max_concurrent_streams(HTTP2_STREAMS_PER_CONNECTION_MAX);
    let node = shared.node.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, peer, request).await) }
    });
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let finished = future::or(async { Some(connection.as_mut().await) }, async {
        node.signal.triggered().await;
        None
    })
    .await;
    let result = match finished {
        Some(result) => result,
        None => {
            // Finish the requests in flight (subscriptions end themselves at shutdown), then
            // close; an idle keep-alive connection closes at once.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    UnsyncBoxBody::new(Full::new(bytes.into()))
}

/// An answer with a whole document of `content_type`.
pub fn document(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An error answer: HTTP status, `__type` and message.
pub struct Refusal {
    status: StatusCode,
    exception: &'static str,
    message: String,
}

impl From<KinesisError> for Refusal {
    fn from(error: KinesisError) -> Refusal {
        let status = StatusCode::from_u16(error.kind.http_status()).expect("AWS statuses are valid");
        Refusal { status, exception: error.kind.exception_name(), message: error.message }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Refusal {
        let status = StatusCode::from_u16(error.http_status()).expect("AWS statuses are valid");
        Refusal { status, exception: error.exception_name(), message: error.message }
    }
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Refusal {
    KinesisError::new(kind, message).into()
}

/// An AWS JSON/CBOR error document: `{"__type": "...Exception", "message": "..."}`.
fn error_response(encoding: Encoding, refusal: Refusal) -> Response<Body> {
    let Refusal { status, exception, message } = refusal;
    #[derive(serde::Serialize)]
    struct ErrorDocument<'a> {
        #[serde(rename = "__type")]
        exception: &'a str,
        message: &'a str,
    }
    let body = aws::to_vec(encoding, &ErrorDocument { exception, message: &message });
    document(status, content_type(encoding), body)
}

/// The content type of an answer in `encoding`.
pub fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "application/x-amz-json-1.1",
        Encoding::Cbor => "application/x-amz-cbor-1.1",
    }
}

/// Answers one request; every answer carries `x-amzn-RequestId`.
async fn handle(shared: &HttpCore, peer: Peer, request: Request<Incoming>) -> Response<Body> {
    let id = uuid::Uuid::new_v4().to_string();
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let encoding = Encoding::of_content_type(content_type);
    // Every log line of this request, on this core, names its request id.
    let span = tracing::error_span!("request", request_id = %id);
    let mut response = match respond(shared, peer, &id, request, encoding).instrument(span).await {
        Ok(response) => response,
        Err(refusal) => {
            if refusal.status.is_server_error() {
                tracing::warn!(request_id = %id, exception = refusal.exception, message = %refusal.message, "HTTP request failed");
            }
            error_response(encoding, refusal)
        }
    };
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&id) {
        headers.insert("x-amzn-RequestId", id);
    }
    response
}

async fn respond(
    shared: &HttpCore,
    peer: Peer,
    request_id: &str,
    request: Request<Incoming>,
    encoding: Encoding,
) -> Result<Response<Body>, Refusal> {
    if request.method() != Method::POST {
        return Err(refuse(
            ErrorKind::UnknownOperation,
            format!("{} is not supported; Kinesis calls are POST /", request.method()),
        ));
    }
    let target = request.headers().get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or("");
    let Some(service) = Service::of_target(target) else {
        if cfg!(not(feature = "firehose"))
            && (target.starts_with("Firehose_") || target.starts_with("AWSGlue.") || is_channel_target(target))
        {
            return Err(refuse(
                ErrorKind::UnknownOperation,
                format!("Unknown operation {target:?}: this sluiced was built without delivery streams (cargo feature `firehose`)"),
            ));
        }
        return Err(refuse(ErrorKind::UnknownOperation, format!("Unknown operation {target:?}")));
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > HTTP_BODY_BYTES_MAX as u64) {
        return Err(too_large(declared.unwrap_or_default()));
    }
    let (parts, body) = request.into_parts();
    let head = Request::from_parts(parts, ());
    // The store as of this request (SIGHUP may swap in another meanwhile).
    let credentials = shared.node.shared.config.security.credentials.as_ref().map(|credentials| credentials.current());
    // A call another member relayed, with its proof, is its client's (`relay`).
    let client = relay::vouched_client(&shared.node, &head)
        .unwrap_or(relay::Client { source_ip: peer.address.map(|address| address.ip()), secure: peer.secure });
    let source = CallSource {
        source_ip: client.source_ip,
        user_agent: head.headers().get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(str::to_string),
        request_id: Some(request_id.to_string()),
    };
    let (operation, verifier) = match service {
        Service::Kinesis(operation) => (operation.name(), &shared.verifier),
        #[cfg(feature = "firehose")]
        Service::Firehose(operation) => (operation.name(), &shared.firehose_verifier),
        #[cfg(feature = "firehose")]
        Service::Channel(operation) => (operation.name(), &shared.verifier),
        #[cfg(feature = "firehose")]
        Service::Glue(operation) => (operation.name(), &shared.glue_verifier),
        Service::Admin(operation) => (operation.name(), &shared.verifier),
    };
    // A refused signature is answered, and recorded in the audit log with the key it claimed.
    let refused = |error: AuthError, access_key_id: Option<&str>| {
        audit::record_refusal(&shared.node, operation, access_key_id, &source, error.exception_name(), &error.message);
        Refusal::from(error)
    };
    // Everything but the signature itself is checked before the body is reserved and read.
    let signed = match credentials {
        None => None,
        Some(store) => {
            let signed = SignedRequest::parse(&sigv4::HttpRequest::from_http(&head)).map_err(|e| refused(e, None))?;
            let now_ms = shared.node.now_ms();
            if let Err(error) = verifier.check_before_body(&signed, &store, now_ms) {
                return Err(refused(error, Some(signed.access_key_id())));
            }
            Some((store, signed))
        }
    };
    let _request = shared.requests.acquire_permit(1).await.map_err(|_| closing())?;
    // Reserve the whole body before reading any of it (see HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX).
    let reserved = declared.unwrap_or(HTTP_BODY_BYTES_MAX as u64);
    let _bytes = shared.body_bytes.acquire_permit(reserved).await.map_err(|_| closing())?;
    // A client that sends its headers and then trickles (or withholds) the body must not hold
    // its reservation forever.
    let body = future::or(read_body(body, declared), async {
        glommio::timer::sleep(Duration::from_millis(HTTP_BODY_READ_TIMEOUT_MS)).await;
        Err(Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            exception: "RequestTimeoutException",
            message: format!("The request body did not arrive within {HTTP_BODY_READ_TIMEOUT_MS} ms"),
        })
    })
    .await?;
    let caller = match signed {
        None => Caller::Anonymous,
        Some((store, signed)) => {
            let options = VerifyOptions { now_ms: shared.node.now_ms(), secure_transport: peer.secure };
            let http = sigv4::HttpRequest::from_http(&head);
            let principal = match verifier.verify(&signed, &http, &body, &store, options) {
                Ok(principal) => principal,
                Err(error) => return Err(refused(error, Some(signed.access_key_id()))),
            };
            Caller::Principal(Authenticated {
                principal: store.shared(&principal.access_key_id).expect("the store verified this key"),
                source: source.clone(),
                secure_transport: client.secure,
            })
        }
    };
    match service {
        Service::Kinesis(operation) => match queue_leader_elsewhere(&shared.node, operation, &head) {
            Some(leader) => {
                let bounds = relay::AnswerBounds {
                    bytes_max: relay::QUEUE_ANSWER_BYTES_MAX,
                    wait_ms: relay::QUEUE_ANSWER_WAIT_MS,
                };
                let call = (&head, &body, client);
                let relayed = relay::relay(&shared.node, leader, "the delivery state", call, bounds).await?;
                let mut answer = Response::new(full(relayed.body));
                *answer.status_mut() = relayed.status;
                if let Some(content_type) = relayed.content_type {
                    answer.headers_mut().insert(header::CONTENT_TYPE, content_type);
                }
                Ok(answer)
            }
            None => kinesis::respond(&shared.node, &caller, operation, encoding, body).await,
        },
        #[cfg(feature = "firehose")]
        Service::Firehose(operation) => {
            firehose::respond(&shared.node, &caller, &shared.firehose, operation, &body).await
        }
        #[cfg(feature = "firehose")]
        Service::Channel(operation) => {
            let answer = match channel_access::authorize(&shared.node, &caller, operation, &body) {
                Ok(()) => channels::answer(&shared.node, &shared.channels, operation, &body).await,
                Err(refusal) => Err(refusal),
            };
            channel_access::record(&shared.node, &caller, operation, &body, answer.as_ref().map(|_| ()));
            firehose::json_answer(answer)
        }
        #[cfg(feature = "firehose")]
        Service::Glue(operation) => glue::respond(&shared.node, &caller, shared.firehose.glue(), operation, &body),
        Service::Admin(operation) => admin::respond(&shared.node, &caller, operation, (&head, &body, client)).await,
    }
}

/// On a replicated node, the leader of the delivery state and its HTTP address when `operation`
/// is a queue's, another member leads, and no member relayed the call here already: the
/// native protocol that forwards the other operations does not carry queues, so the call goes
/// to the leader over HTTP as it came (`relay`), and the leader authorizes and audits it.
fn queue_leader_elsewhere(
    node: &Node,
    operation: sluice_model::Operation,
    head: &Request<()>,
) -> Option<(u64, SocketAddr)> {
    let name = operation.name();
    if node.shared.config.cluster.is_none()
        || !crate::ops::cluster::QUEUE_OPERATIONS.contains(&name)
        || relay::relayed_here(head)
    {
        return None;
    }
    let leader = node.shared.leaders.leader(crate::ops::cluster::DELIVERY_GROUP.0)?;
    Some((leader, relay::http_address(node, leader)?))
}

/// Whether `target` names one of the Kinesis channel operations (served with the cargo
/// feature `firehose`; without it they answer as the Firehose targets do).
fn is_channel_target(target: &str) -> bool {
    target.strip_prefix(aws::KINESIS_TARGET_PREFIX).is_some_and(|operation| {
        matches!(operation, "CreateChannel" | "DeleteChannel" | "DescribeChannel" | "ListChannels" | "UpdateChannel")
    })
}

fn too_large(length: u64) -> Refusal {
    Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        exception: ErrorKind::Serialization.exception_name(),
        message: format!("Request body of {length} bytes exceeds the limit of {HTTP_BODY_BYTES_MAX} bytes"),
    }
}

fn closing() -> Refusal {
    refuse(ErrorKind::InternalFailure, "the server is shutting down")
}

/// Reads a whole body, refusing it once it passes [`HTTP_BODY_BYTES_MAX`] (a chunked body
/// declares no length up front). A body that arrives as one frame is kept as it is; one of
/// several frames is gathered into a buffer of its declared length (bounded above), so that it
/// is copied once and never again as a growing buffer doubles.
async fn read_body(mut body: Incoming, declared: Option<u64>) -> Result<Bytes, Refusal> {
    let mut first: Option<Bytes> = None;
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|error| refuse(ErrorKind::Serialization, format!("reading the body failed: {error}")))?;
        let Ok(data) = frame.into_data() else { continue };
        let length = first.as_ref().map_or(0, Bytes::len) + collected.len() + data.len();
        if length > HTTP_BODY_BYTES_MAX {
            return Err(too_large(length as u64));
        }
        if first.is_none() && collected.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(earlier) = first.take() {
            let declared = declared.map_or(0, |declared| declared.min(HTTP_BODY_BYTES_MAX as u64) as usize);
            collected.reserve(declared.max(length));
            collected.extend_from_slice(&earlier);
        }
        collected.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| collected.freeze()))
}
