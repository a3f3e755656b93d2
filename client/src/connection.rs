//! One connection to `sluiced`: a writer that requests take turns on, and a reader task that
//! hands each response frame to the request waiting for its correlation id.
//!
//! ```text
//!  request futures ──(in-flight permit)──(writer lock: encode + write one frame)──► socket
//!        ▲                                                                            │
//!        └── oneshot / subscription channel ◄── route(frame) ◄── RecvBuffer ◄── reader task
//! ```
//!
//! Invariants:
//! - Frames are written whole, one at a time: the writer lock is held from encoding a frame to
//!   its last byte. A request future dropped part-way through a write would leave the stream
//!   unframeable, so that closes the connection ([`ConnectionError::WriteCancelled`]).
//! - A waiter is registered under its correlation id before the first byte of its frame is
//!   written, and stays registered until its final response arrives, even if the caller
//!   stopped waiting: the id stays reserved and the in-flight permit stays held for as long
//!   as the server may still answer.
//! - Once the connection fails, every waiter gets the failure, new requests fail at once, and
//!   the socket is shut down.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use glommio::net::TcpStream;
use glommio::sync::{RwLock, Semaphore, StaticPermit};
use sluice_model::{
    FirehoseRequest, FirehoseResponse, OperationInput, Request, Response, SubscribeToShardEvent, SubscribeToShardInput,
};
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::native::{self, EncodeInput, ResponseMessage};

use crate::auth::ConnectOptions;
use crate::errors::{ClientError, ConnectionError};
use crate::recv_buffer::RecvBuffer;

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

/// Requests (subscriptions included) in flight on one connection; a request beyond it waits
/// for an earlier one to finish. It bounds what the client holds per connection: waiters,
/// correlation ids, and requests queued behind the writer. 1024 keeps a connection busy at
/// any rate one core can drive (with answers taking about 1 ms, a group commit's fsync,
/// 1024 in flight sustain about a million requests per second) while keeping the worst case
/// of memory pinned by waiters small. The server has its own, possibly smaller, bound: beyond
/// it the server stops reading, and the extra requests wait in the socket buffers.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;

/// Events (and the final end or error) queued between the reader and one [`Subscription`].
/// When the queue is full the reader waits for the consumer instead of buffering more: the
/// whole connection then pauses, and TCP pushes back on the server (docs/protocol.md section
/// 3). Small, because each queued event holds its frame (up to `FRAME_BYTES_MAX`), and
/// because Kinesis pushes about one event per second per subscription, so a deeper queue
/// would not smooth anything.
pub const SUBSCRIPTION_EVENTS_QUEUED_MAX: usize = 4;

/// The request builder's starting capacity: most requests are far smaller, and PutRecords
/// batches grow it as needed.
const REQUEST_BUILDER_BYTES_INITIAL: usize = 64 * 1024;

/// A request builder grown beyond this for a large request is replaced by a fresh one, so one
/// large PutRecords does not pin up to `FRAME_BYTES_MAX` for the connection's lifetime.
const REQUEST_BUILDER_BYTES_RETAINED_MAX: usize = 1024 * 1024;

const _: () = assert!(REQUEST_BUILDER_BYTES_INITIAL <= REQUEST_BUILDER_BYTES_RETAINED_MAX);
// futures-channel's bounded channel holds its buffer plus one slot per sender; each
// subscription has exactly one sender (see `SubscriptionWaiter::items`).
const _: () = assert!(SUBSCRIPTION_EVENTS_QUEUED_MAX >= 1);

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// A connection to `sluiced`'s native protocol, with one method per Kinesis operation.
///
/// Cheap to clone: clones share the connection, and any number of requests may be in flight
/// on it at once (up to [`REQUESTS_IN_FLIGHT_MAX`]); responses are matched to requests by
/// correlation id, in whatever order they come. The connection closes when the last clone
/// (and the last [`Subscription`]) is dropped.
///
/// The client runs inside a glommio executor and is bound to its thread (`!Send`); open one
/// client per executor. Once the connection fails (see [`ConnectionError`]), every call
/// returns [`ClientError::Connection`]; open a new client to go on. There is no automatic
/// reconnection or retry: Kinesis errors such as `ProvisionedThroughputExceeded` come back as
/// [`ClientError::Service`] for the caller to act on.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    shared: Rc<Shared>,
    /// Requests take turns here to encode and write one frame each.
    writer: RwLock<Writer>,
    stream: Rc<RefCell<Box<dyn Io>>>,
    /// Cancelled when the client is dropped.
    _reader: glommio::Task<()>,
}

struct Writer {
    stream: SharedStream,
    /// Reused for every request; see [`REQUEST_BUILDER_BYTES_RETAINED_MAX`].
    builder: FlatBufferBuilder<'static>,
    /// The next correlation id: a counter from 1 (0 is the server's, for connection errors).
    /// At a billion requests per second it would take 584 years to wrap.
    next_correlation_id: u64,
}

impl Client {
    /// Connects to `sluiced`'s native listener at `addr` (`"host:port"`).
    ///
    /// Must run inside a glommio executor. The name is resolved with the system resolver,
    /// which blocks the executor for its duration: prefer an IP address where latency
    /// matters. Each resolved address is tried in turn.
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, &ConnectOptions::default()).await
    }

    /// Connects as [`Client::connect`] does, then authenticates with `options.credentials`
    /// if there are any (the native handshake, [`crate::auth`]). A daemon without
    /// `--credentials` lets the connection go on unauthenticated; one with it answers wrong
    /// credentials with AWS's error ([`ClientError::Service`]: UnrecognizedClientException,
    /// InvalidSignatureException, ExpiredTokenException).
    pub async fn connect_with(addr: &str, options: &ConnectOptions) -> Result<Client, ClientError> {
        let tcp = Client::connect_tcp(addr).await?;
        let (mut stream, channel_binding): (Box<dyn Io>, Vec<u8>) = match &options.tls {
            None => (Box::new(tcp), Vec::new()),
            Some(tls) => {
                let stream = tls.connect(addr, tcp).await?;
                let binding = crate::tls::channel_binding(&stream)?;
                (Box::new(stream), binding)
            }
        };
        if let Some(credentials) = &options.credentials {
            crate::auth::authenticate(&mut stream, credentials, &options.region, &channel_binding).await?;
        }
        Ok(Client::from_io(stream))
    }

    async fn connect_tcp(addr: &str) -> Result<TcpStream, ClientError> {
        let connect_error = |error| ClientError::Connect { addr: addr.to_owned(), error };
        let socket_addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(connect_error)?.collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the address resolved to no socket address");
        for socket_addr in socket_addrs {
            match TcpStream::connect(socket_addr).await {
                Ok(stream) => {
                    // Requests are small frames written whole: Nagle's delay would only add
                    // latency to pipelined requests.
                    stream.set_nodelay(true).map_err(|error| connect_error(error.into()))?;
                    return Ok(stream);
                }
                Err(error) => last_error = error.into(),
            }
        }
        Err(connect_error(last_error))
    }

    /// Wraps an already connected stream (for example one opened with
    /// `TcpStream::connect_timeout`). Must run inside a glommio executor.
    pub fn from_stream(stream: TcpStream) -> Client {
        Client::from_io(Box::new(stream))
    }

    fn from_io(stream: Box<dyn Io>) -> Client {
        let stream = Rc::new(RefCell::new(stream));
        let shared = Rc::new(Shared::new());
        let reader = glommio::spawn_local({
            let shared = shared.clone();
            let stream = stream.clone();
            async move {
                let error = read_loop(&shared, SharedStream(stream.clone())).await;
                shared.fail(error);
                shutdown(&stream);
            }
        });
        let writer = Writer {
            stream: SharedStream(stream.clone()),
            builder: FlatBufferBuilder::with_capacity(REQUEST_BUILDER_BYTES_INITIAL),
            next_correlation_id: 1,
        };
        Client { inner: Rc::new(Inner { shared, writer: RwLock::new(writer), stream, _reader: reader }) }
    }

    /// Why the connection failed, once it has; `None` while it works.
    pub fn connection_error(&self) -> Option<ConnectionError> {
        self.inner.shared.failure.borrow().clone()
    }

    /// Calls one operation: sends `input` and waits for its answer, the operation's output.
    ///
    /// ```no_run
    /// # async fn example(client: &sluice_client::Client) -> Result<(), sluice_client::ClientError> {
    /// use sluice_model::{PutRecordInput, PutRecordOutput};
    /// let put = PutRecordInput {
    ///     stream_name: Some("orders".into()),
    ///     data: bytes::Bytes::from_static(b"hello"),
    ///     partition_key: Some("customer-17".into()),
    ///     ..Default::default()
    /// };
    /// let output: PutRecordOutput = client.call(&put).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<I>(&self, input: &I) -> Result<I::Output, ClientError>
    where
        I: OperationInput + EncodeInput,
    {
        let response = self.exchange(input, I::OPERATION.name()).await?;
        I::output_of(response).map_err(|other| ClientError::UnexpectedResponse {
            operation: I::OPERATION.name(),
            body: format!("a {other} response"),
        })
    }

    /// Calls any operation (see [`Client::call`] for the typed form). SubscribeToShard is
    /// [`Client::subscribe_to_shard`]'s.
    pub async fn call_request(&self, request: &Request) -> Result<Response, ClientError> {
        let operation = request.operation().name();
        let response = self.exchange(request, operation).await?;
        if response.operation() == request.operation() {
            Ok(response)
        } else {
            Err(unexpected(operation, &ResponseMessage::Response(response)))
        }
    }

    /// SubscribeToShard: returns once the server accepted the subscription, or with its
    /// refusal (for example `ResourceInUse` when re-subscribing within 5 seconds).
    ///
    /// The subscription's events share this connection with every other request, and the
    /// reader waits for a subscription whose queue is full (see
    /// [`SUBSCRIPTION_EVENTS_QUEUED_MAX`]). So a consumer must not wait for another request
    /// on the same connection while it leaves its subscription undrained: the reply could be
    /// stuck behind the next event. Give each subscription its own [`Client`] unless its
    /// consumer only ever waits on [`Subscription::next`].
    ///
    /// There is no way to cancel a subscription but closing its connection (as in AWS).
    /// Dropping the [`Subscription`] discards its further events, but they still arrive, and
    /// the subscription counts against [`REQUESTS_IN_FLIGHT_MAX`], until the server ends it
    /// (after at most 5 minutes).
    pub async fn subscribe_to_shard(&self, input: &SubscribeToShardInput) -> Result<Subscription, ClientError> {
        let permit = self.inner.shared.acquire_permit().await?;
        let (accepted_sender, accepted) = oneshot::channel();
        // One sender, so the channel holds its buffer plus one: SUBSCRIPTION_EVENTS_QUEUED_MAX.
        let (items_sender, items) = mpsc::channel(SUBSCRIPTION_EVENTS_QUEUED_MAX - 1);
        let waiter = Waiter::Subscription(SubscriptionWaiter {
            accepted: Some(accepted_sender),
            items: Rc::new(RefCell::new(items_sender)),
            failed: false,
            _permit: permit,
        });
        self.inner.send(input, "SubscribeToShard", waiter).await?;
        match accepted.await {
            Ok(Ok(())) => Ok(Subscription { client: self.clone(), items, finished: false }),
            Ok(Err(error)) => Err(error),
            Err(oneshot::Canceled) => Err(self.inner.shared.failure_or_closed().into()),
        }
    }

    /// Calls one Firehose operation (delivery streams, `docs/firehose.md`): record data goes
    /// as raw bytes in the frame, not base64. A Firehose error is [`ClientError::Service`]
    /// with its exception's kind (`ResourceNotFoundException`, `ServiceUnavailableException`,
    /// …); PutRecordBatch's per-record failures are entries of its answer, not errors.
    pub async fn call_firehose(&self, request: &FirehoseRequest) -> Result<FirehoseResponse, ClientError> {
        let operation = request.operation().name();
        match self.exchange_message(request, operation).await? {
            ResponseMessage::Firehose(response) if response.operation() == request.operation() => Ok(response),
            other => Err(unexpected(operation, &other)),
        }
    }

    /// Sends one request and waits for its final Kinesis response.
    async fn exchange(&self, request: &dyn EncodeInput, operation: &'static str) -> Result<Response, ClientError> {
        match self.exchange_message(request, operation).await? {
            ResponseMessage::Response(response) => Ok(response),
            other => Err(unexpected(operation, &other)),
        }
    }

    /// Sends one request and waits for its final answer, of either API.
    async fn exchange_message(
        &self,
        request: &dyn EncodeInput,
        operation: &'static str,
    ) -> Result<ResponseMessage, ClientError> {
        let permit = self.inner.shared.acquire_permit().await?;
        let (reply_sender, reply) = oneshot::channel();
        let waiter = Waiter::Call(CallWaiter { reply: reply_sender, _permit: permit });
        self.inner.send(request, operation, waiter).await?;
        match reply.await {
            Ok(result) => result,
            Err(oneshot::Canceled) => Err(self.inner.shared.failure_or_closed().into()),
        }
    }
}

fn unexpected(operation: &'static str, message: &ResponseMessage) -> ClientError {
    let body = match message {
        ResponseMessage::Response(response) => format!("a {} response", response.operation()),
        ResponseMessage::Error(error) => format!("the error {error}"),
        ResponseMessage::Event(_) => "a SubscribeToShardEvent".to_owned(),
        ResponseMessage::SubscriptionEnd => "a SubscribeToShardEnd".to_owned(),
        ResponseMessage::Firehose(response) => format!("a Firehose {} response", response.operation()),
    };
    ClientError::UnexpectedResponse { operation, body }
}

impl Inner {
    /// Registers `waiter` under a fresh correlation id and writes the request's frame.
    async fn send(
        &self,
        request: &dyn EncodeInput,
        operation: &'static str,
        waiter: Waiter,
    ) -> Result<(), ClientError> {
        // The lock is never closed, so an error here cannot happen; report it as the
        // connection's failure rather than trust that.
        let mut writer = self.writer.write().await.map_err(|_| self.shared.failure_or_closed())?;
        if let Some(error) = self.shared.failure.borrow().clone() {
            return Err(error.into());
        }
        let Writer { stream, builder, next_correlation_id } = &mut *writer;
        let correlation_id = *next_correlation_id;
        *next_correlation_id += 1;
        builder.reset();
        let frame =
            request.encode(builder, correlation_id).map_err(|error| ClientError::Encode { operation, error })?;
        let frame_bytes = frame.len();

        self.shared.waiters.borrow_mut().insert(correlation_id, waiter);
        let mut guard = SendGuard { inner: self, correlation_id, progress: SendProgress::Unsent };
        let mut written_bytes = 0;
        while written_bytes < frame_bytes {
            match stream.write(&frame[written_bytes..]).await {
                Ok(0) => {
                    let error = io::Error::new(io::ErrorKind::WriteZero, "the socket accepted no bytes");
                    return Err(guard.fail(ConnectionError::Io(Arc::new(error))));
                }
                Ok(bytes) => {
                    written_bytes += bytes;
                    guard.progress = SendProgress::Partial;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(guard.fail(ConnectionError::Io(Arc::new(error)))),
            }
        }
        // TLS keeps what the socket did not take in its buffer until a flush (or the next
        // write, which may never come): the request would not reach the server.
        if let Err(error) = stream.flush().await {
            return Err(guard.fail(ConnectionError::Io(Arc::new(error))));
        }
        guard.progress = SendProgress::Sent;
        if frame_bytes > REQUEST_BUILDER_BYTES_RETAINED_MAX {
            *builder = FlatBufferBuilder::with_capacity(REQUEST_BUILDER_BYTES_INITIAL);
        }
        Ok(())
    }

    fn fail(&self, error: ConnectionError) {
        self.shared.fail(error);
        shutdown(&self.stream);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close now, so the server sees it even before the cancelled reader task is dropped.
        shutdown(&self.stream);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SendProgress {
    /// Nothing written: the request can be forgotten.
    Unsent,
    /// Part of the frame is written: the stream cannot carry another frame.
    Partial,
    /// The frame is written, or the connection has already failed.
    Sent,
}

/// Cleans up after a send that did not finish, including one whose future was dropped.
struct SendGuard<'a> {
    inner: &'a Inner,
    correlation_id: u64,
    progress: SendProgress,
}

impl SendGuard<'_> {
    fn fail(&mut self, error: ConnectionError) -> ClientError {
        self.progress = SendProgress::Sent;
        self.inner.fail(error.clone());
        error.into()
    }
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        match self.progress {
            SendProgress::Unsent => {
                self.inner.shared.waiters.borrow_mut().remove(&self.correlation_id);
            }
            SendProgress::Partial => self.inner.fail(ConnectionError::WriteCancelled),
            SendProgress::Sent => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------

/// The events of one SubscribeToShard, in order, until the server ends it.
///
/// Holds its connection open. See [`Client::subscribe_to_shard`] for how it shares the
/// connection with other requests.
pub struct Subscription {
    client: Client,
    items: mpsc::Receiver<SubscriptionItem>,
    finished: bool,
}

impl Subscription {
    /// The next event; `None` once the server ended the subscription (`SubscribeToShardEnd`:
    /// its 5 minutes are over, or the closed shard was delivered to its end, in which case the
    /// last event carries `child_shards`). An error (the server's, in-stream, or the
    /// connection's) is the last item: `None` follows it.
    pub async fn next(&mut self) -> Option<Result<SubscribeToShardEvent, ClientError>> {
        if self.finished {
            return None;
        }
        match self.items.next().await {
            Some(SubscriptionItem::Event(event)) => Some(Ok(event)),
            Some(SubscriptionItem::End) => {
                self.finished = true;
                None
            }
            Some(SubscriptionItem::Error(error)) => {
                self.finished = true;
                Some(Err(error))
            }
            // The reader dropped the sender without a final item: the connection failed.
            None => {
                self.finished = true;
                Some(Err(self.client.inner.shared.failure_or_closed().into()))
            }
        }
    }
}

#[derive(Debug)]
enum SubscriptionItem {
    Event(SubscribeToShardEvent),
    End,
    Error(ClientError),
}

// ---------------------------------------------------------------------------------------
// Shared state and the reader
// ---------------------------------------------------------------------------------------

/// What the reader task and the requests share.
struct Shared {
    waiters: RefCell<HashMap<u64, Waiter>>,
    in_flight: Rc<Semaphore>,
    /// Set once, when the connection fails.
    failure: RefCell<Option<ConnectionError>>,
}

enum Waiter {
    Call(CallWaiter),
    Subscription(SubscriptionWaiter),
}

struct CallWaiter {
    /// The answer: a Kinesis response or a Firehose one (the caller checks which it wanted).
    reply: oneshot::Sender<Result<ResponseMessage, ClientError>>,
    _permit: StaticPermit,
}

struct SubscriptionWaiter {
    /// Until the first frame: who learns whether the subscription was accepted.
    accepted: Option<oneshot::Sender<Result<(), ClientError>>>,
    /// Shared with the reader while it waits for queue space, which it must do without
    /// holding the waiters' map; the only sender, so the queue's bound is exact.
    items: Rc<RefCell<mpsc::Sender<SubscriptionItem>>>,
    /// The server broke the subscription's protocol and the subscriber was told; later frames
    /// are discarded until the final one.
    failed: bool,
    _permit: StaticPermit,
}

/// A subscription item the reader must deliver after routing a frame.
#[derive(Debug)]
struct Delivery {
    items: Rc<RefCell<mpsc::Sender<SubscriptionItem>>>,
    item: SubscriptionItem,
}

/// A frame as far as routing cares: an error response, or a decoded body (which may have
/// failed to decode).
enum Outcome {
    Error(ClientError),
    Body(Result<ResponseMessage, ClientError>),
}

impl Outcome {
    /// Whether this frame ends a subscription: its correlation id is free after it.
    fn ends_subscription(&self) -> bool {
        matches!(self, Outcome::Error(_) | Outcome::Body(Ok(ResponseMessage::SubscriptionEnd)))
    }
}

impl Shared {
    fn new() -> Self {
        Self {
            waiters: RefCell::new(HashMap::new()),
            in_flight: Rc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX as u64)),
            failure: RefCell::new(None),
        }
    }

    async fn acquire_permit(&self) -> Result<StaticPermit, ClientError> {
        // The semaphore is closed when the connection fails.
        self.in_flight.acquire_static_permit(1).await.map_err(|_| self.failure_or_closed().into())
    }

    fn failure_or_closed(&self) -> ConnectionError {
        self.failure.borrow().clone().unwrap_or(ConnectionError::Closed)
    }

    /// Marks the connection failed and fails every waiter; the first failure wins.
    fn fail(&self, error: ConnectionError) {
        if self.failure.borrow().is_some() {
            return;
        }
        *self.failure.borrow_mut() = Some(error.clone());
        self.in_flight.close();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters.into_values() {
            match waiter {
                Waiter::Call(call) => {
                    let _ = call.reply.send(Err(error.clone().into()));
                }
                Waiter::Subscription(subscription) => {
                    if let Some(accepted) = subscription.accepted {
                        let _ = accepted.send(Err(error.clone().into()));
                    }
                    // Dropping the sender ends the subscriber's queue after the events
                    // already in it; the subscriber then reads `failure`.
                }
            }
        }
    }

    /// Hands one response frame to its waiter. Returns the subscription item still to be
    /// delivered, if any, or the error that breaks the connection.
    fn route(&self, frame: &Bytes) -> Result<Option<Delivery>, ConnectionError> {
        let decoded = native::decode_response(frame)
            .map_err(ConnectionError::Frame)?
            .expect("RecvBuffer yields whole frames, which decode to Some or an error");
        let correlation_id = decoded.correlation_id;
        let outcome = match decoded.message {
            Ok(ResponseMessage::Error(error)) => Outcome::Error(ClientError::Service(error)),
            Ok(message) => Outcome::Body(Ok(message)),
            Err(error) => Outcome::Body(Err(ClientError::Decode(error))),
        };

        if correlation_id == 0 {
            return Err(match outcome {
                Outcome::Error(ClientError::Service(error)) => ConnectionError::Rejected(error),
                _ => ConnectionError::Protocol {
                    correlation_id,
                    reason: "correlation id 0 is reserved for connection errors, but this is no error".to_owned(),
                },
            });
        }

        let mut waiters = self.waiters.borrow_mut();
        match waiters.remove(&correlation_id) {
            None => Err(ConnectionError::Protocol {
                correlation_id,
                reason: "no request is waiting for this correlation id".to_owned(),
            }),
            Some(Waiter::Call(call)) => {
                drop(waiters);
                let result = match outcome {
                    Outcome::Error(error) => Err(error),
                    Outcome::Body(Err(error)) => Err(error),
                    Outcome::Body(Ok(message @ (ResponseMessage::Response(_) | ResponseMessage::Firehose(_)))) => {
                        Ok(message)
                    }
                    Outcome::Body(Ok(other)) => Err(unexpected("a call", &other)),
                };
                // The caller may have stopped waiting; that is fine.
                let _ = call.reply.send(result);
                Ok(None)
            }
            Some(Waiter::Subscription(mut subscription)) => {
                let ends = outcome.ends_subscription();
                let delivery = subscription.advance(outcome);
                if !ends {
                    waiters.insert(correlation_id, Waiter::Subscription(subscription));
                }
                Ok(delivery)
            }
        }
    }
}

impl SubscriptionWaiter {
    /// Moves the subscription on by one frame (docs/protocol.md section 3: the acceptance or
    /// an error, then events, then the end or an error). A frame out of that order fails the
    /// subscription, not the connection: the subscriber gets an error and later frames are
    /// discarded until the final one frees the id.
    fn advance(&mut self, outcome: Outcome) -> Option<Delivery> {
        if self.failed {
            return None;
        }
        if let Some(accepted) = self.accepted.take() {
            let result = match outcome {
                Outcome::Body(Ok(ResponseMessage::Response(Response::SubscribeToShard(_)))) => Ok(()),
                Outcome::Error(error) => Err(error),
                Outcome::Body(Err(error)) => {
                    self.failed = true;
                    Err(error)
                }
                Outcome::Body(Ok(other)) => {
                    self.failed = true;
                    Err(unexpected("SubscribeToShard", &other))
                }
            };
            let _ = accepted.send(result);
            return None;
        }
        let item = match outcome {
            Outcome::Body(Ok(ResponseMessage::Event(event))) => SubscriptionItem::Event(event),
            Outcome::Body(Ok(ResponseMessage::SubscriptionEnd)) => SubscriptionItem::End,
            Outcome::Error(error) => SubscriptionItem::Error(error),
            Outcome::Body(Err(error)) => {
                self.failed = true;
                SubscriptionItem::Error(error)
            }
            Outcome::Body(Ok(other)) => {
                self.failed = true;
                SubscriptionItem::Error(unexpected("SubscribeToShard", &other))
            }
        };
        Some(Delivery { items: self.items.clone(), item })
    }
}

impl Delivery {
    /// Queues the item, waiting for space while the subscriber is behind (back-pressure);
    /// drops it if the subscriber is gone.
    async fn deliver(self) {
        let ready = futures_lite::future::poll_fn(|cx| self.items.borrow_mut().poll_ready(cx)).await;
        if ready.is_ok() {
            let _ = self.items.borrow_mut().start_send(self.item);
        }
    }
}

/// Reads and routes response frames until the connection breaks; returns why it broke.
async fn read_loop<R: AsyncRead + Unpin>(shared: &Shared, mut reader: R) -> ConnectionError {
    let mut buffer = RecvBuffer::new();
    loop {
        // Route every whole frame before reading more.
        loop {
            let frame = match buffer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return ConnectionError::Frame(error),
            };
            match shared.route(&frame) {
                Ok(None) => {}
                Ok(Some(delivery)) => delivery.deliver().await,
                Err(error) => return error,
            }
            // A burst of small frames can be routed without the socket ever making us wait;
            // let other tasks (the requests being completed) run in between.
            glommio::yield_if_needed().await;
        }
        match reader.read(buffer.unfilled()).await {
            Ok(0) if buffer.buffered_bytes() == 0 => return ConnectionError::Closed,
            Ok(0) => return ConnectionError::ClosedMidFrame { buffered_bytes: buffer.buffered_bytes() },
            Ok(bytes) => buffer.filled(bytes),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return ConnectionError::Io(Arc::new(error)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The socket, shared by the reader and the writer
// ---------------------------------------------------------------------------------------

/// One half of the connection's socket. glommio's stream keeps separate state for reading
/// and writing, so the reader and the writer can each have an operation pending; they share
/// the stream through a `RefCell` that each poll borrows only for its own duration, which on
/// one thread can never overlap.
struct SharedStream(Rc<RefCell<Box<dyn Io>>>);

/// A connection's byte stream: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin {
    /// The socket under the stream, to shut down.
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for futures_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// Shuts the socket down in both directions: the peer sees the close, and a pending read or
/// write returns. Errors (for example, already shut down) are of no interest here.
fn shutdown(stream: &RefCell<Box<dyn Io>>) {
    let Ok(stream) = stream.try_borrow() else {
        return;
    };
    let stream = stream.tcp();
    // glommio performs `shutdown` synchronously inside its future (it is not an io_uring
    // operation in 0.9), so the first poll completes it and `block_on` returns at once.
    let _ = futures_lite::future::block_on(futures_lite::future::poll_once(stream.shutdown(Shutdown::Both)));
}

#[cfg(test)]
mod tests;
