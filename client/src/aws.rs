//! A client of the AWS JSON 1.1 (or CBOR 1.1) protocol over HTTP/1.1, on hyper's client:
//! the same model types as [`crate::Client`], the AWS codec of `sluice-protocol`, and
//! SubscribeToShard's event stream read with its one event-stream codec (CRCs checked).
//!
//! HTTP/1.1 carries one request at a time per connection, so the client keeps a pool of idle
//! connections and opens more as requests need them (up to [`IDLE_CONNECTIONS_MAX`] are kept).
//! A kept connection the server closed meanwhile (it closes idle ones) fails before the
//! request is written: that request is sent again, once, on a new connection; the server
//! never saw it.
//!
//! With credentials ([`HttpClient::connect_with`] and [`ConnectOptions::credentials`]) every
//! request is signed with AWS Signature Version 4 (`sluice_security::sigv4::Signer`, service
//! `kinesis`, the options' region, the body hashed into the signature), as sluiced with
//! `--credentials` requires; without them requests are unsigned, which an open sluiced accepts.
//! With [`ConnectOptions::tls`] (a CA bundle) connections are HTTPS (rustls, ALPN `http/1.1`).

use crate::auth::ConnectOptions;
use crate::errors::{ClientError, ConnectionError};
use crate::tls::TlsOptions;
use bytes::{Bytes, BytesMut};
use glommio::net::TcpStream;
use http::header::{HeaderName, HeaderValue};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use serde::Serialize;
use sluice_hyper_glommio::client_handshake;
use sluice_model::*;
use sluice_protocol::aws::{self, Encoding};
use sluice_protocol::eventstream;
use sluice_security::sigv4::{self, Payload, Signer};
use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;

/// Idle connections kept for reuse.
pub const IDLE_CONNECTIONS_MAX: usize = 256;
/// Largest answer body read: a GetRecords answer of 10 MiB of data, base64-encoded, with its
/// JSON around it, fits.
pub const BODY_BYTES_MAX: usize = 32 << 20;

fn io_error(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ClientError {
    ClientError::Connection(ConnectionError::Io(Arc::new(io::Error::other(error))))
}

/// Connections to one endpoint, opened as requests need them and kept for reuse.
pub struct HttpClient {
    addr: SocketAddr,
    /// `host:port` as given: the TLS server name is its host.
    host: String,
    /// The `Host` header (signed): `host:port`, without the port when it is the scheme's
    /// default (443 over TLS, 80 without), as the AWS SDKs send it.
    host_header: String,
    encoding: Encoding,
    idle: RefCell<Vec<SendRequest<Full<Bytes>>>>,
    /// HTTPS: the CA bundle to trust, with ALPN `http/1.1`.
    tls: Option<TlsOptions>,
    /// Signs every request, when credentials were given.
    /// Signers for the two services this client calls: Kinesis (and Sluice's own targets), and
    /// Firehose (`firehose.rs`), whose requests sluiced verifies under the `firehose` scope.
    signers: Option<(Signer, Signer)>,
}

/// The target prefix of Firehose's operations (`firehose.rs`), whose requests are signed for the
/// `firehose` service.
pub const FIREHOSE_TARGET_PREFIX: &str = "Firehose_20150804.";

impl HttpClient {
    /// A client of `endpoint` (`host:port`) speaking `encoding`, unsigned and over plain TCP.
    /// Fails now, not on the first request, if nothing listens there.
    pub async fn connect(endpoint: &str, encoding: Encoding) -> Result<Rc<HttpClient>, ClientError> {
        HttpClient::connect_with(endpoint, encoding, &ConnectOptions::default()).await
    }

    /// A client of `endpoint` that signs its requests with `options.credentials` (SigV4 for
    /// `options.region`) and speaks HTTPS if `options.tls` is set. Fails now if nothing
    /// listens there or the TLS handshake fails.
    pub async fn connect_with(
        endpoint: &str,
        encoding: Encoding,
        options: &ConnectOptions,
    ) -> Result<Rc<HttpClient>, ClientError> {
        let connect_error = |error| ClientError::Connect { addr: endpoint.to_owned(), error };
        let addr = endpoint
            .to_socket_addrs()
            .map_err(connect_error)?
            .next()
            .ok_or_else(|| connect_error(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        if let Some(credentials) = &options.credentials {
            // They go into header values (the signature line, `x-amz-security-token`).
            let token = credentials.session_token.as_ref().map_or("", |token| token.expose());
            for (what, value) in [("access key id", credentials.access_key_id.as_str()), ("session token", token)] {
                if HeaderValue::from_str(value).is_err() {
                    let problem = format!("the {what} has characters an HTTP header cannot carry");
                    return Err(connect_error(io::Error::new(io::ErrorKind::InvalidInput, problem)));
                }
            }
        }
        let host_header = match (options.tls.is_some(), endpoint.rsplit_once(':')) {
            (true, Some((host, "443"))) | (false, Some((host, "80"))) => host.to_owned(),
            _ => endpoint.to_owned(),
        };
        let client = Rc::new(HttpClient {
            addr,
            host: endpoint.to_owned(),
            host_header,
            encoding,
            idle: RefCell::new(Vec::new()),
            tls: options.tls.as_ref().map(TlsOptions::for_http),
            signers: options.credentials.clone().map(|credentials| {
                (
                    Signer::new(credentials.clone(), options.region.clone(), sigv4::KINESIS_SERVICE),
                    Signer::new(credentials, options.region.clone(), sigv4::FIREHOSE_SERVICE),
                )
            }),
        });
        let connection = client.open().await.map_err(|error| match error {
            // The TLS handshake's own error says more than "nothing answers".
            ClientError::Connect { .. } => error,
            _ => connect_error(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "nothing answers there (is --http-listen set?)",
            )),
        })?;
        client.idle.borrow_mut().push(connection);
        Ok(client)
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream = TcpStream::connect(self.addr).await.map_err(|error| io_error(io::Error::from(error)))?;
        stream.set_nodelay(true).map_err(|error| io_error(io::Error::from(error)))?;
        match &self.tls {
            None => client_handshake(stream).await.map_err(io_error),
            Some(tls) => client_handshake(tls.connect(&self.host, stream).await?).await.map_err(io_error),
        }
    }

    /// A POST of `body` under `target` (`X-Amz-Target`: `Kinesis_20131202.<Operation>`,
    /// `Sluice_20261201.<Operation>`, or another service's, as Firehose's in `firehose.rs`).
    fn request(&self, target: &str, encoding: Encoding, body: Vec<u8>) -> Request<Full<Bytes>> {
        let content_type = match encoding {
            Encoding::Json => "application/x-amz-json-1.1",
            Encoding::Cbor => "application/x-amz-cbor-1.1",
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(header::HOST, &self.host_header)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-amz-target", target)
            .body(())
            .expect("the request's parts are valid");
        if let Some((kinesis, firehose)) = &self.signers {
            let signer = if target.starts_with(FIREHOSE_TARGET_PREFIX) { firehose } else { kinesis };
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
            let added = signer
                .sign(&sigv4::HttpRequest::from_http(&request), Payload::Bytes(&body), now_ms)
                .expect("the request has a host header");
            for (name, value) in added {
                let name = HeaderName::from_bytes(name.as_bytes()).expect("SigV4 header names are valid");
                // The date, the signature line (hex, the key id `connect_with` checked) and the
                // session token (checked there too).
                let value = HeaderValue::from_str(&value).expect("checked by connect_with");
                request.headers_mut().insert(name, value);
            }
        }
        request.map(|()| Full::new(Bytes::from(body)))
    }

    /// Sends one request on an idle connection (or a new one) and returns the answer's head
    /// and body, with the connection it came on.
    async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<(http::Response<Incoming>, SendRequest<Full<Bytes>>), ClientError> {
        // Idle connections first; one the server closed gives the request back unsent.
        loop {
            let idle = self.idle.borrow_mut().pop();
            let Some(mut sender) = idle else { break };
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(io_error(error.into_error())),
                },
            }
        }
        let mut sender = self.open().await?;
        sender.ready().await.map_err(io_error)?;
        let response = sender.send_request(request).await.map_err(io_error)?;
        Ok((response, sender))
    }

    fn release(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < IDLE_CONNECTIONS_MAX && !sender.is_closed() {
            idle.push(sender);
        }
    }

    /// Sends one request and reads its whole answer (at most [`BODY_BYTES_MAX`]): the status
    /// and the body. For operations this crate has no method for (another service's, such as
    /// Firehose's CreateDeliveryStream): the body is sent as given, signed like every request.
    pub async fn post(
        &self,
        target: &str,
        encoding: Encoding,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(self.signed(target, encoding, body)).await
    }

    /// The request [`HttpClient::post`] sends, signed: for a caller that adds headers of its
    /// own (unsigned) before it sends it with [`HttpClient::send`].
    pub fn signed(&self, target: &str, encoding: Encoding, body: Vec<u8>) -> Request<Full<Bytes>> {
        self.request(target, encoding, body)
    }

    /// Sends `request` (from [`HttpClient::signed`]) as [`HttpClient::post`] does.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), ClientError> {
        let (response, sender) = self.exchange(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), BODY_BYTES_MAX).collect().await.map_err(io_error)?.to_bytes();
        self.release(sender);
        Ok((status, body))
    }

    /// Calls one operation and returns its output (or the Kinesis error the server answered).
    pub async fn call<I: OperationInput + Serialize>(&self, input: &I) -> Result<I::Output, ClientError> {
        let response = self.call_operation(I::OPERATION, input).await?;
        I::output_of(response).map_err(|other| ClientError::UnexpectedResponse {
            operation: I::OPERATION.name(),
            body: format!("a {other} response"),
        })
    }

    /// Calls the operation of any request (a request serializes as its input) and returns
    /// its response: for callers that hold a `Request`, like the CLI.
    pub async fn call_request(&self, request: &sluice_model::Request) -> Result<Response, ClientError> {
        self.call_operation(request.operation(), request).await
    }

    async fn call_operation<T: Serialize + ?Sized>(
        &self,
        operation: Operation,
        input: &T,
    ) -> Result<Response, ClientError> {
        let (status, body) =
            self.post(&operation.target(), self.encoding, aws::encode_request(self.encoding, input)).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Service(aws::decode_error(self.encoding, &body)));
        }
        aws::decode_response(operation, self.encoding, &body)
            .map_err(|error| ClientError::UnexpectedResponse { operation: operation.name(), body: error.reason })
    }

    // Sluice's consumer-group operations (docs/clients.md, "Consumer groups: the lease
    // operations"): one method per operation, each a `call` under its own name. A refused
    // renewal, release or checkpoint is `ClientError::Service` with `ErrorKind::LeaseLost`
    // (stop processing the shard); a lost race for a take or steal is `ResourceInUse`.

    pub async fn create_application(
        &self,
        input: &CreateApplicationInput,
    ) -> Result<ApplicationDescription, ClientError> {
        Ok(self.call(input).await?.application_description)
    }

    pub async fn describe_application(
        &self,
        input: &DescribeApplicationInput,
    ) -> Result<ApplicationDescription, ClientError> {
        Ok(self.call(input).await?.application_description)
    }

    pub async fn list_applications(
        &self,
        input: &ListApplicationsInput,
    ) -> Result<ListApplicationsOutput, ClientError> {
        self.call(input).await
    }

    pub async fn delete_application(&self, input: &DeleteApplicationInput) -> Result<(), ClientError> {
        self.call(input).await.map(drop)
    }

    /// One page of an application's leases (`next_token` continues).
    pub async fn list_leases(&self, input: &ListLeasesInput) -> Result<ListLeasesOutput, ClientError> {
        self.call(input).await
    }

    pub async fn take_lease(&self, input: &TakeLeaseInput) -> Result<Lease, ClientError> {
        Ok(self.call(input).await?.lease)
    }

    pub async fn renew_lease(&self, input: &RenewLeaseInput) -> Result<Lease, ClientError> {
        Ok(self.call(input).await?.lease)
    }

    pub async fn release_lease(&self, input: &ReleaseLeaseInput) -> Result<Lease, ClientError> {
        Ok(self.call(input).await?.lease)
    }

    pub async fn steal_lease(&self, input: &StealLeaseInput) -> Result<Lease, ClientError> {
        Ok(self.call(input).await?.lease)
    }

    pub async fn checkpoint_lease(&self, input: &CheckpointLeaseInput) -> Result<Lease, ClientError> {
        Ok(self.call(input).await?.lease)
    }

    /// SubscribeToShard: returns once the `initial-response` arrived; the connection then
    /// belongs to the subscription.
    pub async fn subscribe_to_shard(&self, input: &SubscribeToShardInput) -> Result<HttpSubscription, ClientError> {
        let mut sender = self.open().await?;
        sender.ready().await.map_err(io_error)?;
        let request = self.request(
            &Operation::SubscribeToShard.target(),
            self.encoding,
            aws::encode_request(self.encoding, input),
        );
        let response = sender.send_request(request).await.map_err(io_error)?;
        if response.status() != StatusCode::OK {
            let body = Limited::new(response.into_body(), BODY_BYTES_MAX).collect().await.map_err(io_error)?.to_bytes();
            return Err(ClientError::Service(aws::decode_error(self.encoding, &body)));
        }
        let mut subscription = HttpSubscription {
            body: response.into_body(),
            buffer: BytesMut::new(),
            encoding: self.encoding,
            ended: false,
            _connection: sender,
        };
        match subscription.next_message().await? {
            Some(message) if message.header(":event-type") == Some("initial-response") => Ok(subscription),
            Some(message) => {
                Err(io_error(format!("the first event is {:?}, not initial-response", message.header(":event-type"))))
            }
            None => Err(io_error("the subscription ended before its initial-response")),
        }
    }
}

/// The events of one SubscribeToShard over HTTP.
pub struct HttpSubscription {
    body: Incoming,
    /// Body bytes not yet decoded into messages.
    buffer: BytesMut,
    encoding: Encoding,
    ended: bool,
    /// The connection, held for as long as the subscription reads it.
    _connection: SendRequest<Full<Bytes>>,
}

impl HttpSubscription {
    async fn next_message(&mut self) -> Result<Option<eventstream::Message>, ClientError> {
        loop {
            if let Some((message, used)) = eventstream::decode(&self.buffer).map_err(io_error)? {
                let _ = self.buffer.split_to(used);
                return Ok(Some(message));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(error)) => return Err(io_error(error)),
                None => self.ended = true,
            }
        }
    }

    /// The next event; `None` once the subscription ended. An error (the server's, in-stream,
    /// or the connection's) is the last item.
    pub async fn next(&mut self) -> Option<Result<SubscribeToShardEvent, ClientError>> {
        let message = match self.next_message().await {
            Ok(Some(message)) => message,
            Ok(None) => return None,
            Err(error) => {
                self.end();
                return Some(Err(error));
            }
        };
        if let Some(exception) = message.header(":exception-type") {
            let kind = ErrorKind::from_exception_name(exception).unwrap_or(ErrorKind::InternalFailure);
            let text = aws::decode_error(self.encoding, &message.payload).message;
            self.end();
            return Some(Err(ClientError::Service(KinesisError::new(kind, text))));
        }
        Some(
            aws::decode_event(self.encoding, &message.payload)
                .map_err(|error| ClientError::UnexpectedResponse { operation: "SubscribeToShard", body: error.reason }),
        )
    }

    fn end(&mut self) {
        self.ended = true;
        self.buffer.clear();
    }
}
