//! The AWS-compatible HTTP API: what boto3, the AWS CLI and the AWS SDKs speak to Kinesis.
//!
//! `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>` and a body in AWS JSON 1.1
//! (`application/x-amz-json-1.1`) or AWS CBOR 1.1 (`application/x-amz-cbor-1.1`, the Java SDKs'
//! default), over HTTP/1.1 or HTTP/2 (cleartext with prior knowledge, as the Java SDK v2 uses
//! for SubscribeToShard). Every core listens on the same address (glommio binds with
//! `SO_REUSEPORT`) and answers on the core that accepted the connection, through the same
//! [`Core`] operations as the native protocol.
//!
//! - [`rt`]: hyper on glommio (I/O, executor, timer).
//! - [`value`]: the JSON/CBOR document model; [`shapes`]: type checks and validation against
//!   the Kinesis model; [`operations`]: documents to operations and back.
//! - [`eventstream`]: the framing of SubscribeToShard's streamed response.
//!
//! Bounds: request bodies ([`HTTP_BODY_BYTES_MAX`] each, [`HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX`]
//! per core), requests in flight per core, connections per core, HTTP/2 streams per connection,
//! and the time to send request headers. Any input gets an AWS-shaped answer; nothing a client
//! sends can panic the server.
//!
//! `Authorization` headers (SigV4) are accepted and not verified yet; unsigned requests are
//! accepted too.

pub mod eventstream;
pub mod operations;
use sluice_hyper_glommio as rt;
pub mod shapes;
pub mod value;

use crate::error::{ErrorKind, ServiceError};
use crate::limits::{
    HTTP2_STREAMS_PER_CONNECTION_MAX, HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX, HTTP_BODY_BYTES_MAX,
    HTTP_BODY_READ_TIMEOUT_MS, HTTP_CONNECTIONS_PER_CORE_MAX, HTTP_HEADER_READ_TIMEOUT_MS,
    HTTP_REQUESTS_IN_FLIGHT_PER_CORE_MAX, SHUTDOWN_DRAIN_MS,
};
use crate::node::Core;
use crate::subscription::SubscriptionItem;
use bytes::{Bytes, BytesMut};
use futures_lite::{future, stream, StreamExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Semaphore;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;
use value::{Encoding, Value};

/// The `X-Amz-Target` prefix of Kinesis (the service model's `targetPrefix`).
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// The content type of SubscribeToShard's response.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What one core's HTTP connections share.
struct HttpCore {
    core: Rc<Core>,
    body_bytes: Semaphore,
    requests: Semaphore,
}

/// Accepts HTTP connections until shutdown, then lets them finish (boundedly), like the
/// native protocol's [`crate::connection::serve`].
pub async fn serve(core: Rc<Core>, listener: TcpListener) {
    let shared = Rc::new(HttpCore {
        core: core.clone(),
        body_bytes: Semaphore::new(HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX as u64),
        requests: Semaphore::new(HTTP_REQUESTS_IN_FLIGHT_PER_CORE_MAX as u64),
    });
    let open = Rc::new(Cell::new(0usize));
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            core.shutdown_requested().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                if open.get() >= HTTP_CONNECTIONS_PER_CORE_MAX {
                    tracing::warn!(core = core.id, "HTTP connection limit reached; closing a new connection");
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (shared, open) = (shared.clone(), open.clone());
                glommio::spawn_local(async move {
                    connection(shared, stream).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "HTTP accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    let deadline = std::time::Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS);
    while open.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    if open.get() > 0 {
        tracing::warn!(
            core = core.id,
            connections = open.get(),
            "closing HTTP connections still busy after the drain period"
        );
    }
}

/// Serves one connection: HTTP/1.1, or HTTP/2 if it opens with the HTTP/2 preface.
async fn connection(shared: Rc<HttpCore>, stream: TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "set_nodelay failed");
    }
    let mut builder = hyper_util::server::conn::auto::Builder::new(rt::LocalExec);
    builder
        .http1()
        .timer(rt::GlommioTimer)
        .header_read_timeout(Duration::from_millis(HTTP_HEADER_READ_TIMEOUT_MS))
        .http2()
        .timer(rt::GlommioTimer)
        .max_concurrent_streams(HTTP2_STREAMS_PER_CONNECTION_MAX);
    let core = shared.core.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
    });
    let connection = builder.serve_connection(rt::Io(stream), service);
    let mut connection = std::pin::pin!(connection);
    let finished = future::or(async { Some(connection.as_mut().await) }, async {
        core.shutdown_requested().await;
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

/// A request id as AWS formats them (a UUID), for `x-amzn-RequestId`.
fn request_id() -> String {
    let bits: u128 = rand::random();
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn full(bytes: impl Into<Bytes>) -> Body {
    UnsyncBoxBody::new(Full::new(bytes.into()))
}

/// The HTTP status of an error: 500 for the service's own failures, 400 for the caller's.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An AWS JSON/CBOR error document: `{"__type": "...Exception", "message": "..."}`.
fn error_response(encoding: Encoding, refusal: Refusal) -> Response<Body> {
    let Refusal { status, exception, message } = refusal;
    let document = value::map([("__type", value::text(exception)), ("message", value::text(message))]);
    let mut response = Response::new(full(value::encode(encoding, &document)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    response
}

/// Answers one request; every answer carries `x-amzn-RequestId`.
async fn handle(shared: &HttpCore, request: Request<Incoming>) -> Response<Body> {
    let id = request_id();
    let encoding = encoding_of(&request);
    let mut response = match respond(shared, request, encoding).await {
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

/// The encoding of a request, from its Content-Type. JSON unless it says CBOR: AWS answers
/// JSON clients that send `application/json` or no type at all, so Sluice does too.
fn encoding_of<B>(request: &Request<B>) -> Encoding {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    match content_type {
        Some(content_type) if content_type.trim().starts_with("application/x-amz-cbor") => Encoding::Cbor,
        _ => Encoding::Json,
    }
}

/// An error answer: HTTP status, `__type` and message.
struct Refusal {
    status: StatusCode,
    exception: &'static str,
    message: String,
}

impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Refusal {
        Refusal { status: status_of(error.kind), exception: error.kind.exception_name(), message: error.message }
    }
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Refusal {
    ServiceError::new(kind, message).into()
}

async fn respond(shared: &HttpCore, request: Request<Incoming>, encoding: Encoding) -> Result<Response<Body>, Refusal> {
    if request.method() != Method::POST {
        return Err(refuse(
            ErrorKind::UnknownOperation,
            format!("{} is not supported; Kinesis calls are POST /", request.method()),
        ));
    }
    let target = request.headers().get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or("");
    let operation = match target.strip_prefix(TARGET_PREFIX) {
        Some(operation) if operations::OPERATIONS.contains(&operation) => operation.to_string(),
        _ => return Err(refuse(ErrorKind::UnknownOperation, format!("Unknown operation {target:?}"))),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > HTTP_BODY_BYTES_MAX as u64) {
        return Err(too_large(declared.unwrap_or_default()));
    }
    let _request = shared.requests.acquire_permit(1).await.map_err(|_| closing())?;
    // Reserve the whole body before reading any of it (see HTTP_BODY_BYTES_IN_FLIGHT_PER_CORE_MAX).
    let reserved = declared.unwrap_or(HTTP_BODY_BYTES_MAX as u64);
    let _bytes = shared.body_bytes.acquire_permit(reserved).await.map_err(|_| closing())?;
    // A client that sends its headers and then trickles (or withholds) the body must not hold
    // its reservation forever.
    let body = future::or(read_body(request.into_body()), async {
        glommio::timer::sleep(Duration::from_millis(HTTP_BODY_READ_TIMEOUT_MS)).await;
        Err(Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            exception: "RequestTimeoutException",
            message: format!("The request body did not arrive within {HTTP_BODY_READ_TIMEOUT_MS} ms"),
        })
    })
    .await?;
    let mut document =
        value::decode(encoding, &body).map_err(|error| refuse(ErrorKind::Serialization, error.to_string()))?;
    drop(body);
    shapes::check(&operation, &mut document, encoding)?;
    if operation == "SubscribeToShard" {
        return subscribe(&shared.core, &document, encoding).await;
    }
    let output = operations::call(&shared.core, &operation, document).await?;
    let mut response = Response::new(full(value::encode(encoding, &output)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    Ok(response)
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
/// declares no length up front).
async fn read_body(mut body: Incoming) -> Result<Bytes, Refusal> {
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|error| refuse(ErrorKind::Serialization, format!("reading the body failed: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > HTTP_BODY_BYTES_MAX {
                return Err(too_large((collected.len() + data.len()) as u64));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// SubscribeToShard: a 200 whose body is an event stream: `initial-response`, then a
/// `SubscribeToShardEvent` per batch until the subscription ends (its body ends) or fails (an
/// exception message, then the end). Errors before the subscription starts are ordinary error
/// responses, as AWS sends them.
async fn subscribe(core: &Rc<Core>, document: &Value, encoding: Encoding) -> Result<Response<Body>, Refusal> {
    let request = operations::subscribe_request(document)?;
    let events = core.subscribe_to_shard(request).await?;
    let content_type = encoding.content_type();
    let initial =
        eventstream::event("initial-response", content_type, &value::encode(encoding, &Value::Map(Vec::new())));
    // The receiver lives in the body: when the client goes away hyper drops the body, the
    // subscription's next send fails, and it stops.
    let rest = stream::unfold(Some(events), move |events| async move {
        let events = events?;
        let frame = match events.recv().await.ok()? {
            SubscriptionItem::Event(event) => {
                let payload = value::encode(encoding, &operations::event_out(&event));
                return Some((eventstream::event("SubscribeToShardEvent", content_type, &payload), Some(events)));
            }
            SubscriptionItem::End => return None,
            SubscriptionItem::Error(error) => {
                let document = value::map([("message", value::text(error.message.clone()))]);
                eventstream::exception(
                    stream_exception_name(error.kind),
                    content_type,
                    &value::encode(encoding, &document),
                )
            }
        };
        Some((frame, None))
    });
    let frames = stream::once(initial).chain(rest).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(frames)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE));
    Ok(response)
}

/// Exception names inside SubscribeToShard's event stream, as its model lists them.
fn stream_exception_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ResourceNotFound => "ResourceNotFoundException",
        ErrorKind::ResourceInUse => "ResourceInUseException",
        _ => "InternalFailureException",
    }
}
