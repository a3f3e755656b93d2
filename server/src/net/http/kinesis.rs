//! Kinesis over HTTP: a body to a model request (the AWS codec, shape checker included), the
//! one dispatch, and the answer back in the request's encoding.
//!
//! SubscribeToShard answers 200 with an `application/vnd.amazon.eventstream` body: an
//! `initial-response` event, then a `SubscribeToShardEvent` per batch until the subscription
//! ends (the body ends) or fails (an exception message, then the end). Errors before the
//! subscription starts are ordinary error answers, as AWS sends them.

use crate::metrics::Protocol;
use crate::net::http::{content_type, document, Body, Refusal};
use crate::ops::auth::Caller;
use crate::ops::dispatch::{execute, Answer};
use crate::ops::node::Node;
use crate::ops::subscriptions::{Events, SubscriptionItem};
use bytes::Bytes;
use futures_lite::{stream, StreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::StreamBody;
use hyper::body::Frame;
use sluice_model::{Empty, ErrorKind, Operation};
use sluice_protocol::aws::{self, Encoding};
use sluice_protocol::eventstream;
use std::convert::Infallible;
use std::rc::Rc;

/// The content type of SubscribeToShard's answer.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Answers one Kinesis call whose body has been read.
pub async fn respond(
    node: &Rc<Node>,
    caller: &Caller,
    operation: Operation,
    encoding: Encoding,
    body: Bytes,
) -> Result<Response<Body>, Refusal> {
    let request = aws::decode_request(operation, encoding, &body)?;
    drop(body);
    let _in_flight = node.metrics.request(Protocol::Http);
    match execute(node, caller, request).await? {
        Answer::Response(response) => {
            Ok(document(StatusCode::OK, content_type(encoding), aws::encode_response(encoding, &response)))
        }
        Answer::Subscription(events) => Ok(event_stream(events, encoding)),
    }
}

/// SubscribeToShard's answer: the event stream of `events`.
fn event_stream(events: Events, encoding: Encoding) -> Response<Body> {
    let content_type = content_type(encoding);
    let initial = eventstream::event("initial-response", content_type, &aws::to_vec(encoding, &Empty {}));
    // The receiver lives in the body: when the client goes away hyper drops the body, the
    // subscription's next send fails, and it stops.
    let rest = stream::unfold(Some(events), move |events| async move {
        let events = events?;
        let frame = match events.recv().await.ok()? {
            SubscriptionItem::Event(event) => {
                let payload = aws::encode_event(encoding, &event);
                return Some((eventstream::event("SubscribeToShardEvent", content_type, &payload), Some(events)));
            }
            SubscriptionItem::End => return None,
            SubscriptionItem::Error(error) => eventstream::exception(
                stream_exception_name(error.kind),
                content_type,
                &aws::encode_exception_payload(encoding, &error),
            ),
        };
        Some((frame, None))
    });
    let frames = stream::once(initial).chain(rest).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(frames)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE));
    response
}

/// Exception names inside SubscribeToShard's event stream, as its model lists them.
fn stream_exception_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ResourceNotFound => "ResourceNotFoundException",
        ErrorKind::ResourceInUse => "ResourceInUseException",
        _ => "InternalFailureException",
    }
}
