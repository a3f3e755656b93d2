//! The native protocol: connections, frames to model requests, answers to frames.
//!
//! Each connection has one reader (its task), one writer task fed by a bounded queue, and a
//! task per request in flight. Requests in flight are bounded in count and bytes; when either
//! bound is reached the reader stops reading and TCP pushes back on the client. Answers are
//! reserved room in the writer's queue before they are computed, so a client that does not
//! read its answers stops the requests that produce them.
//!
//! Payloads are not copied on the way in: a record's data is a slice of the received frame
//! (the codec, `sluice_protocol::native`, decodes it so), and it is copied once, into the
//! journal's O_DIRECT buffer. A frame larger than a receive chunk (a PutRecords batch) is read
//! into a reused buffer of its core's [`FramePool`] rather than into fresh memory zeroed for
//! the read.

use crate::limits::{
    RECEIVE_CHUNK_BYTES, REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX, RESPONSE_FRAMES_QUEUED_MAX, SMALL_RESPONSE_BYTES,
    TLS_HANDSHAKE_TIMEOUT_MS,
};
use crate::metrics::Protocol;
use crate::net::frame_pool::FramePool;
use crate::net::native_auth::{self, ChannelBinding, NativePeer, Opened};
use crate::net::outbound::Outbound;
use crate::net::receive::ReceiveBuffer;
use crate::ops::auth::Caller;
use crate::ops::dispatch::{execute, execute_from, Answer, Origin};
#[cfg(feature = "firehose")]
use crate::ops::firehose::Firehose;
use crate::ops::node::Node;
use crate::ops::subscriptions::{Events, SubscriptionItem};
use bytes::{Bytes, BytesMut};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use sluice_model::limits::{GET_RECORDS_COUNT_MAX, STREAM_RECORD_BYTES_MAX};
use sluice_model::{FirehoseRequest, KinesisError, Request, Response};
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::frame::{RECORD_FRAMING_BYTES_MAX, SEQUENCE_NUMBER_BYTES_MAX};
use sluice_protocol::native::{self, capacity_for, NativeRequest};
use sluice_protocol::FRAME_BYTES_MAX;
use sluice_security::challenge::CHANNEL_BINDING_LABEL;
use std::rc::Rc;
#[cfg(feature = "firehose")]
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

/// A builder's starting capacity for answers other than records: most are far smaller.
const ANSWER_BUILDER_BYTES_INITIAL: usize = 1024;

/// What the native connections of one core share besides the node: the delivery streams the
/// Firehose operations run on (feature `firehose`).
#[derive(Clone)]
pub struct Services {
    #[cfg(feature = "firehose")]
    pub firehose: Arc<Firehose>,
}

/// Serves one native connection until the client closes it or the node shuts down.
pub async fn connection(node: Rc<Node>, stream: TcpStream, services: Rc<Services>) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "set_nodelay failed");
    }
    let address = stream.peer_addr().ok();
    let Some(tls) = node.shared.config.security.native_tls.clone() else {
        if let Err(error) = serve(node, services, stream, NativePeer { address, secure: false }, Vec::new()).await {
            tracing::debug!(%error, "connection ended with an error");
        }
        return;
    };
    // TLS first (the certificate of the moment: a reload on SIGHUP applies to connections
    // accepted after it), bounded in time like the HTTP listener's. The authentication
    // handshake's proofs name this TLS session (its RFC 5705 channel binding), so they cannot
    // be relayed through another one.
    let accepted = sluice_security::tls::accept_bound(tls.acceptor(), stream, CHANNEL_BINDING_LABEL);
    let handshake = future::or(async { Some(accepted.await) }, async {
        glommio::timer::sleep(Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS)).await;
        None
    })
    .await;
    let (stream, binding) = match handshake {
        Some(Ok(accepted)) => accepted,
        Some(Err(error)) => return tracing::debug!(%error, ?address, "TLS handshake failed"),
        None => return tracing::debug!(?address, "TLS handshake timed out"),
    };
    if let Err(error) = serve(node, services, stream, NativePeer { address, secure: true }, binding).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Serves a connection (plain or TLS): the authentication handshake, then its requests.
async fn serve<S>(
    node: Rc<Node>,
    services: Rc<Services>,
    stream: S,
    peer: NativePeer,
    channel_binding: ChannelBinding,
) -> std::io::Result<()>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + 'static,
{
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (frames, queued) = local_channel::new_bounded::<(Vec<u8>, StaticPermit)>(RESPONSE_FRAMES_QUEUED_MAX);
    let sink = Outbound::new(frames);
    let writer_task = glommio::spawn_local(async move {
        while let Some((frame, permit)) = queued.recv().await {
            // TLS: a write the socket takes only in part leaves the rest of the ciphertext in
            // rustls' buffer (`poll_write` reports the plaintext taken), and only a later write
            // or a flush sends it. Without the flush the last answer of a burst could wait there
            // for good while its client waits for it (seen under load in a TLS cluster). On a
            // plain socket a flush does nothing.
            let written = match writer.write_all(&frame).await {
                Ok(()) => writer.flush().await,
                Err(error) => Err(error),
            };
            drop((frame, permit));
            if written.is_err() {
                break;
            }
        }
        let _ = writer.close().await;
    });
    let requests_max = node.limits().requests_in_flight_per_connection_max as u64;
    let requests = Rc::new(Semaphore::new(requests_max));
    let bytes = Rc::new(Semaphore::new(REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION_MAX as u64));
    let sink = Rc::new(sink);
    let mut buffer = BytesMut::with_capacity(RECEIVE_CHUNK_BYTES);
    let (caller, member) = match native_auth::open(&node, &mut reader, &mut buffer, &sink, peer, &channel_binding).await
    {
        Opened::Caller(caller) => (Rc::new(caller), false),
        Opened::Member(caller) => (Rc::new(caller), true),
        Opened::Closed => {
            drop(sink);
            writer_task.await;
            return Ok(());
        }
    };
    let mut buffer = ReceiveBuffer::new(buffer);
    let pool = FramePool::of_this_core();
    // Hands a whole frame to a task of its own, once the connection's bounds admit it.
    let dispatch = |frame: Bytes| {
        let (node, services, sink, caller, requests, bytes) =
            (node.clone(), services.clone(), sink.clone(), caller.clone(), requests.clone(), bytes.clone());
        async move {
            let request = requests.acquire_static_permit(1).await.map_err(closed)?;
            let held = bytes.acquire_static_permit(frame.len() as u64).await.map_err(closed)?;
            glommio::spawn_local(async move {
                handle(&node, &services, &caller, member, frame, &sink).await;
                drop((request, held));
            })
            .detach();
            Ok::<(), std::io::Error>(())
        }
    };
    'read: loop {
        // Answer every whole frame in the buffer.
        let wanted = loop {
            match sluice_protocol::frame_len(buffer.received()) {
                Ok(Some(len)) if buffer.received().len() >= len => dispatch(buffer.split_frame(len)).await?,
                Ok(Some(len)) if len > RECEIVE_CHUNK_BYTES => {
                    // A large frame: the rest of it is read straight into reused memory.
                    let mut frame = pool.take(len);
                    frame.extend_from_slice(buffer.received());
                    buffer.clear();
                    while !frame.is_whole() {
                        let room = frame.unfilled();
                        match read_or_shutdown(&node, &mut reader, room).await {
                            Some(Ok(0)) | None => break 'read,
                            Some(Ok(read)) => frame.filled(read),
                            Some(Err(error)) => {
                                tracing::debug!(%error, "read failed");
                                break 'read;
                            }
                        }
                    }
                    dispatch(frame.into_bytes()).await?;
                }
                Ok(Some(len)) => break len - buffer.received().len(),
                Ok(None) => break 1,
                Err(error) => {
                    // Nothing after a bad length prefix can be trusted: answer and close.
                    let _ = sink.send(error_frame(0, &KinesisError::serialization(error.to_string()))).await;
                    break 'read;
                }
            }
        };
        let room = buffer.room(wanted.max(RECEIVE_CHUNK_BYTES));
        match read_or_shutdown(&node, &mut reader, room).await {
            Some(Ok(0)) | None => break,
            Some(Ok(read)) => buffer.filled(read),
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                break;
            }
        }
    }
    // Let the requests in flight finish and their answers go out, then close.
    let _ = requests.acquire(requests_max).await;
    drop(sink);
    writer_task.await;
    Ok(())
}

/// One read, or `None` if the node shuts down first.
async fn read_or_shutdown<R: futures_lite::AsyncRead + Unpin>(
    node: &Node,
    reader: &mut R,
    room: &mut [u8],
) -> Option<std::io::Result<usize>> {
    future::or(async { Some(reader.read(room).await) }, async {
        node.signal.triggered().await;
        None
    })
    .await
}

fn closed(_: glommio::GlommioError<()>) -> std::io::Error {
    std::io::Error::other("connection semaphore closed")
}

// ---------------------------------------------------------------------------------------------
// One request.

/// An error answer frame.
fn error_frame(correlation_id: u64, error: &KinesisError) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(ANSWER_BUILDER_BYTES_INITIAL + error.message.len());
    native::encode_error(&mut fbb, correlation_id, error).expect("an error frame fits").to_vec()
}

/// The frame of `answer` (or of the error it became).
fn answer_frame(correlation_id: u64, answer: Result<Response, KinesisError>) -> Vec<u8> {
    let response = match answer {
        Ok(response) => response,
        Err(error) => return error_frame(correlation_id, &error),
    };
    let capacity = match &response {
        Response::GetRecords(output) => capacity_for(&output.records),
        _ => ANSWER_BUILDER_BYTES_INITIAL,
    };
    let mut fbb = FlatBufferBuilder::with_capacity(capacity);
    match native::encode_response(&mut fbb, correlation_id, &response) {
        Ok(frame) => frame.to_vec(),
        Err(error) => {
            error_frame(correlation_id, &KinesisError::internal(format!("response does not fit a frame: {error}")))
        }
    }
}

/// How large the answer to `request` can be, reserved before it is computed. Only GetRecords
/// answers can be large; every other answer is small next to the connection's budget.
fn response_bytes_max(request: &Request) -> usize {
    match request {
        Request::GetRecords(input) => {
            let records = input.limit.map_or(GET_RECORDS_COUNT_MAX, |limit| limit.max(1) as usize);
            let per_record = STREAM_RECORD_BYTES_MAX + RECORD_FRAMING_BYTES_MAX + SEQUENCE_NUMBER_BYTES_MAX;
            records.saturating_mul(per_record).min(FRAME_BYTES_MAX)
        }
        _ => SMALL_RESPONSE_BYTES,
    }
}

/// Every log line of a request, on this core, names its correlation id (the native
/// protocol's request id).
fn request_span(correlation_id: u64) -> tracing::Span {
    tracing::error_span!("request", correlation_id)
}

/// Answers one request frame: sends its answer frame(s) to `sink`. `member`: the connection
/// authenticated as another cluster member.
async fn handle(node: &Rc<Node>, services: &Services, caller: &Caller, member: bool, frame: Bytes, sink: &Outbound) {
    let decoded = match native::decode_any_request(&frame) {
        Ok(Some(decoded)) => decoded,
        // The connection checked the frame's length; the body failed verification.
        Ok(None) | Err(_) => {
            let _ = sink.send(error_frame(0, &KinesisError::serialization("malformed request frame"))).await;
            return;
        }
    };
    let correlation_id = decoded.correlation_id;
    let (request, forwarded_as, origin) = match decoded.request {
        Ok(NativeRequest::Kinesis(request)) => (request, None, Origin::Client),
        Ok(NativeRequest::Forwarded(forwarded)) => {
            match native_auth::forwarded_caller(node, caller, member, forwarded.caller) {
                Ok(as_caller) => (forwarded.request, Some(as_caller), Origin::Forwarded),
                Err(error) => {
                    let _ = sink.send(error_frame(correlation_id, &error)).await;
                    return;
                }
            }
        }
        Ok(NativeRequest::Firehose(request)) => {
            let _in_flight = node.metrics.request(Protocol::Native);
            let span = request_span(correlation_id);
            return firehose(node, services, caller, correlation_id, request, sink).instrument(span).await;
        }
        Err(error) => {
            let _ = sink.send(error_frame(correlation_id, &error)).await;
            return;
        }
    };
    let _in_flight = node.metrics.request(Protocol::Native);
    let caller = forwarded_as.as_ref().unwrap_or(caller);
    if matches!(request, Request::SubscribeToShard(_)) {
        // A subscription's frames are sent one at a time as events come, each reserving its
        // own room; the request frame is not needed meanwhile.
        drop(frame);
        match execute(node, caller, request).instrument(request_span(correlation_id)).await {
            Ok(Answer::Subscription(events)) => subscription(correlation_id, events, sink).await,
            Ok(Answer::Response(response)) => {
                let _ = sink.send(answer_frame(correlation_id, Ok(response))).await;
            }
            Err(error) => {
                let _ = sink.send(error_frame(correlation_id, &error)).await;
            }
        }
        return;
    }
    let Ok(reservation) = sink.reserve(response_bytes_max(&request)).await else { return };
    let answer = match execute_from(node, caller, request, origin).instrument(request_span(correlation_id)).await {
        Ok(Answer::Response(response)) => Ok(response),
        Ok(Answer::Subscription(_)) => Err(KinesisError::internal("only SubscribeToShard answers with events")),
        Err(error) => Err(error),
    };
    let _ = sink.send_reserved(answer_frame(correlation_id, answer), reservation).await;
}

/// Answers one Firehose request (`net::native_firehose`, the code path of the HTTP API's).
#[cfg(feature = "firehose")]
async fn firehose(
    node: &Rc<Node>,
    services: &Services,
    caller: &Caller,
    correlation_id: u64,
    request: FirehoseRequest,
    sink: &Outbound,
) {
    use crate::net::native_firehose;
    let Ok(reservation) = sink.reserve(native_firehose::response_bytes_max(&request)).await else { return };
    let frame = match native_firehose::answer(node, caller, &services.firehose, request).await {
        Ok(response) => {
            let mut fbb = FlatBufferBuilder::with_capacity(native::firehose_capacity_for(&response));
            match native::encode_firehose_response(&mut fbb, correlation_id, &response) {
                Ok(frame) => frame.to_vec(),
                Err(error) => error_frame(
                    correlation_id,
                    &KinesisError::internal(format!("response does not fit a frame: {error}")),
                ),
            }
        }
        Err(error) => error_frame(correlation_id, &error),
    };
    let _ = sink.send_reserved(frame, reservation).await;
}

/// Without delivery streams, a Firehose request is an operation this daemon does not serve.
#[cfg(not(feature = "firehose"))]
async fn firehose(
    _: &Rc<Node>,
    _: &Services,
    _: &Caller,
    correlation_id: u64,
    request: FirehoseRequest,
    sink: &Outbound,
) {
    let error = KinesisError::new(
        sluice_model::ErrorKind::UnknownOperation,
        format!("{}: this sluiced was built without delivery streams (cargo feature `firehose`)", request.operation()),
    );
    let _ = sink.send(error_frame(correlation_id, &error)).await;
}

/// Sends a subscription: the acceptance, then every event, then its end or error, all under
/// the request's correlation id.
async fn subscription(correlation_id: u64, events: Events, sink: &Outbound) {
    let accepted = answer_frame(correlation_id, Ok(Response::SubscribeToShard(sluice_model::Empty {})));
    if sink.send(accepted).await.is_err() {
        return;
    }
    while let Ok(item) = events.recv().await {
        let frame = match item {
            SubscriptionItem::Event(event) => {
                let mut fbb = FlatBufferBuilder::with_capacity(capacity_for(&event.records));
                match native::encode_event(&mut fbb, correlation_id, &event) {
                    Ok(frame) => frame.to_vec(),
                    Err(error) => {
                        let error = KinesisError::internal(format!("event does not fit a frame: {error}"));
                        let _ = sink.send(error_frame(correlation_id, &error)).await;
                        return;
                    }
                }
            }
            SubscriptionItem::End => {
                let mut fbb = FlatBufferBuilder::with_capacity(ANSWER_BUILDER_BYTES_INITIAL);
                let end = native::encode_subscription_end(&mut fbb, correlation_id).expect("an empty frame fits");
                let _ = sink.send(end.to_vec()).await;
                return;
            }
            SubscriptionItem::Error(error) => {
                let _ = sink.send(error_frame(correlation_id, &error)).await;
                return;
            }
        };
        if sink.send(frame).await.is_err() {
            return;
        }
    }
}
