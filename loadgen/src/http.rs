//! A minimal client of sluiced's AWS JSON 1.1 API (`--protocol http`), enough for the
//! scenarios: HTTP/1.1 keep-alive connections, one request at a time each, pooled; JSON bodies
//! with base64 `Data`; SubscribeToShard's `application/vnd.amazon.eventstream` body read as it
//! streams (shared/reference/kinesis-api.md section 2). Requests are unsigned, which sluiced
//! accepts.
//!
//! It measures the HTTP API as an SDK would reach it, at the cost of one connection per
//! request in flight (HTTP/1.1 has no multiplexing): where the native protocol pipelines a
//! thousand requests on one connection, this opens as many connections as there are requests
//! in flight, and keeps them for reuse.

use base64::Engine as _;
use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use serde_json::{json, Value};
use sluice_client::{ClientError, ConnectionError, ErrorCode, Record, SubscribeToShardEvent, Timestamp};
use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;

/// `X-Amz-Target` prefix of every Kinesis operation.
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// Largest response head (status line and headers) accepted.
const HEAD_BYTES_MAX: usize = 64 << 10;

/// Largest response body accepted: a GetRecords response of 10 MiB of data, base64-encoded,
/// with its JSON around it, fits.
const BODY_BYTES_MAX: usize = 32 << 20;

/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Idle connections kept for reuse.
const IDLE_CONNECTIONS_MAX: usize = 256;

fn io_error(error: io::Error) -> ClientError {
    ClientError::Connection(ConnectionError::Io(Arc::new(error)))
}

fn protocol_error(reason: impl Into<String>) -> ClientError {
    io_error(io::Error::new(io::ErrorKind::InvalidData, reason.into()))
}

/// A Kinesis error from its `__type` (with any `prefix#` removed, as botocore does).
fn service_error(exception: &str, message: String) -> ClientError {
    let name = exception.rsplit('#').next().unwrap_or(exception);
    let name = name.split(':').next().unwrap_or(name);
    let code = ErrorCode::ENUM_VALUES
        .iter()
        .copied()
        .find(|code| code.exception_name() == name || code.exception_name().trim_end_matches("Exception") == name)
        .unwrap_or(ErrorCode::InternalFailure);
    ClientError::Service { code, exception: code.exception_name(), message }
}

/// The error code of an exception name (PutRecords entries carry only the name).
pub fn service_error_code(exception: &str, message: &str) -> Option<ErrorCode> {
    service_error(exception, message.to_owned()).code()
}

/// How an exchange failed: before any byte of the answer arrived (the request may be sent
/// again on a new connection), or during the answer.
enum ExchangeError {
    BeforeAnswer(ClientError),
    DuringAnswer(ClientError),
}

/// One HTTP/1.1 connection.
struct Connection {
    stream: TcpStream,
    /// Bytes read past the end of the last response.
    buffered: Vec<u8>,
}

/// A response head: status, and how the body is framed.
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr).await.map_err(|error| io_error(error.into()))?;
        stream.set_nodelay(true).map_err(|error| io_error(error.into()))?;
        Ok(Connection { stream, buffered: Vec::new() })
    }

    async fn send(&mut self, host: &str, operation: &str, body: &[u8]) -> Result<(), ClientError> {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {TARGET_PREFIX}{operation}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        self.stream.write_all(&request).await.map_err(io_error)
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> Result<(), ClientError> {
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        let read = self.stream.read(&mut chunk).await.map_err(io_error)?;
        if read == 0 {
            return Err(ClientError::Connection(ConnectionError::Closed));
        }
        self.buffered.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    async fn read_head(&mut self) -> Result<Head, ClientError> {
        let end = loop {
            if let Some(at) = self.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if self.buffered.len() > HEAD_BYTES_MAX {
                return Err(protocol_error("response head too large"));
            }
            self.fill().await?;
        };
        let text = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
        self.buffered.drain(..end);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| protocol_error(format!("bad status line in {text:?}")))?;
        let mut head = Head { status, content_length: None, chunked: false, close: false };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => head.content_length = value.parse().ok(),
                "transfer-encoding" => head.chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => head.close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        Ok(head)
    }

    async fn read_exact(&mut self, bytes: usize) -> Result<Vec<u8>, ClientError> {
        while self.buffered.len() < bytes {
            self.fill().await?;
        }
        Ok(self.buffered.drain(..bytes).collect())
    }

    async fn read_line(&mut self) -> Result<String, ClientError> {
        loop {
            if let Some(at) = self.buffered.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffered[..at]).into_owned();
                self.buffered.drain(..at + 2);
                return Ok(line);
            }
            if self.buffered.len() > HEAD_BYTES_MAX {
                return Err(protocol_error("chunk header too long"));
            }
            self.fill().await?;
        }
    }

    /// The next piece of a chunked body, or `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        let line = self.read_line().await?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| protocol_error(format!("bad chunk size {line:?}")))?;
        if size > BODY_BYTES_MAX {
            return Err(protocol_error("chunk too large"));
        }
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !self.read_line().await?.is_empty() {}
            return Ok(None);
        }
        let data = self.read_exact(size).await?;
        let _ = self.read_exact(2).await?;
        Ok(Some(data))
    }

    async fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, ClientError> {
        if head.chunked {
            let mut body = Vec::new();
            while let Some(chunk) = self.next_chunk().await? {
                body.extend_from_slice(&chunk);
                if body.len() > BODY_BYTES_MAX {
                    return Err(protocol_error("response body too large"));
                }
            }
            return Ok(body);
        }
        let length = head.content_length.unwrap_or(0);
        if length > BODY_BYTES_MAX {
            return Err(protocol_error("response body too large"));
        }
        self.read_exact(length).await
    }
}

/// Connections to one endpoint, opened as requests need them and kept for reuse.
pub struct HttpClient {
    addr: SocketAddr,
    host: String,
    idle: RefCell<Vec<Connection>>,
}

impl HttpClient {
    pub async fn connect(endpoint: &str) -> Result<Rc<HttpClient>, ClientError> {
        let connect_error = |error| ClientError::Connect { addr: endpoint.to_owned(), error };
        let addr = endpoint
            .to_socket_addrs()
            .map_err(connect_error)?
            .next()
            .ok_or_else(|| connect_error(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        let client = Rc::new(HttpClient { addr, host: endpoint.to_owned(), idle: RefCell::new(Vec::new()) });
        // Fail now, not on the first request, if nothing listens there.
        let connection = Connection::open(addr).await.map_err(|_| {
            connect_error(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "nothing answers there (is --http-listen set?)",
            ))
        })?;
        client.idle.borrow_mut().push(connection);
        Ok(client)
    }

    /// An idle connection (and `true`), or a new one.
    async fn connection(&self) -> Result<(Connection, bool), ClientError> {
        let idle = self.idle.borrow_mut().pop();
        match idle {
            Some(connection) => Ok((connection, true)),
            None => Ok((Connection::open(self.addr).await?, false)),
        }
    }

    /// Sends one request and reads its whole response. A kept-alive connection the server
    /// has closed meanwhile (it closes idle ones) fails before any byte of an answer: that
    /// request is sent again once, on a new connection; the server never saw it.
    async fn exchange(&self, operation: &str, body: &[u8]) -> Result<(Head, Vec<u8>), ClientError> {
        let (mut connection, reused) = self.connection().await?;
        let mut result = Self::exchange_on(&mut connection, &self.host, operation, body).await;
        if reused && matches!(result, Err(ExchangeError::BeforeAnswer(_))) {
            connection = Connection::open(self.addr).await?;
            result = Self::exchange_on(&mut connection, &self.host, operation, body).await;
        }
        match result {
            Ok((head, body)) => {
                if !head.close {
                    self.release(connection);
                }
                Ok((head, body))
            }
            Err(ExchangeError::BeforeAnswer(error) | ExchangeError::DuringAnswer(error)) => Err(error),
        }
    }

    async fn exchange_on(
        connection: &mut Connection,
        host: &str,
        operation: &str,
        body: &[u8],
    ) -> Result<(Head, Vec<u8>), ExchangeError> {
        connection.send(host, operation, body).await.map_err(ExchangeError::BeforeAnswer)?;
        let head = connection.read_head().await.map_err(|error| {
            if connection.buffered.is_empty() {
                ExchangeError::BeforeAnswer(error)
            } else {
                ExchangeError::DuringAnswer(error)
            }
        })?;
        let body = connection.read_body(&head).await.map_err(ExchangeError::DuringAnswer)?;
        Ok((head, body))
    }

    fn release(&self, connection: Connection) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < IDLE_CONNECTIONS_MAX {
            idle.push(connection);
        }
    }

    /// Calls `operation` with a JSON `input`; the output document, or the Kinesis error.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(input).map_err(|error| protocol_error(error.to_string()))?;
        let (head, body) = self.exchange(operation, &body).await?;
        let document: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).map_err(|error| protocol_error(format!("{operation}: {error}")))?
        };
        if head.status == 200 {
            return Ok(document);
        }
        let exception = document["__type"].as_str().unwrap_or("InternalFailure");
        let message = document["message"].as_str().or(document["Message"].as_str()).unwrap_or("").to_owned();
        Err(service_error(exception, message))
    }

    /// SubscribeToShard: returns once the `initial-response` arrived; the connection then
    /// belongs to the subscription.
    pub async fn subscribe(&self, input: &Value) -> Result<HttpSubscription, ClientError> {
        let body = serde_json::to_vec(input).map_err(|error| protocol_error(error.to_string()))?;
        let mut connection = Connection::open(self.addr).await?;
        connection.send(&self.host, "SubscribeToShard", &body).await?;
        let head = connection.read_head().await?;
        if head.status != 200 {
            let body = connection.read_body(&head).await?;
            let document: Value = serde_json::from_slice(&body).unwrap_or_default();
            let exception = document["__type"].as_str().unwrap_or("InternalFailure");
            let message = document["message"].as_str().unwrap_or("").to_owned();
            return Err(service_error(exception, message));
        }
        let mut subscription = HttpSubscription { connection, head, stream: Vec::new(), ended: false };
        match subscription.next_message().await? {
            Some(message) if message.event_type.as_deref() == Some("initial-response") => Ok(subscription),
            Some(message) => {
                Err(protocol_error(format!("first event is {:?}, not initial-response", message.event_type)))
            }
            None => Err(protocol_error("the subscription ended before its initial-response")),
        }
    }
}

/// One event-stream message.
struct Message {
    event_type: Option<String>,
    exception_type: Option<String>,
    payload: Vec<u8>,
}

/// Decodes one event-stream message from the front of `buffer`: `Ok(None)` if it is not all
/// there yet; the message and its length otherwise.
fn decode_message(buffer: &[u8]) -> Result<Option<(Message, usize)>, ClientError> {
    if buffer.len() < 12 {
        return Ok(None);
    }
    let total = u32::from_be_bytes(buffer[0..4].try_into().expect("4 bytes")) as usize;
    let headers_len = u32::from_be_bytes(buffer[4..8].try_into().expect("4 bytes")) as usize;
    if total < 16 + headers_len || total > BODY_BYTES_MAX {
        return Err(protocol_error(format!("bad event-stream lengths {total}/{headers_len}")));
    }
    if buffer.len() < total {
        return Ok(None);
    }
    let mut message =
        Message { event_type: None, exception_type: None, payload: buffer[12 + headers_len..total - 4].to_vec() };
    let mut headers = &buffer[12..12 + headers_len];
    while !headers.is_empty() {
        let bad = || protocol_error("bad event-stream header");
        let name_len = *headers.first().ok_or_else(bad)? as usize;
        let name = headers.get(1..1 + name_len).ok_or_else(bad)?;
        let kind = *headers.get(1 + name_len).ok_or_else(bad)?;
        if kind != 7 {
            return Err(protocol_error(format!("event-stream header type {kind} not expected")));
        }
        let at = 2 + name_len;
        let value_len =
            u16::from_be_bytes(headers.get(at..at + 2).ok_or_else(bad)?.try_into().expect("2 bytes")) as usize;
        let value = headers.get(at + 2..at + 2 + value_len).ok_or_else(bad)?;
        let value = String::from_utf8_lossy(value).into_owned();
        match name {
            b":event-type" => message.event_type = Some(value),
            b":exception-type" => message.exception_type = Some(value),
            _ => {}
        }
        headers = &headers[at + 2 + value_len..];
    }
    Ok(Some((message, total)))
}

/// The events of one SubscribeToShard over HTTP.
pub struct HttpSubscription {
    connection: Connection,
    head: Head,
    /// De-chunked body bytes not yet decoded.
    stream: Vec<u8>,
    ended: bool,
}

impl HttpSubscription {
    async fn next_message(&mut self) -> Result<Option<Message>, ClientError> {
        loop {
            if let Some((message, used)) = decode_message(&self.stream)? {
                self.stream.drain(..used);
                return Ok(Some(message));
            }
            if self.ended {
                return Ok(None);
            }
            if self.head.chunked {
                match self.connection.next_chunk().await? {
                    Some(chunk) => self.stream.extend_from_slice(&chunk),
                    None => self.ended = true,
                }
            } else {
                // A body delimited by the connection's end.
                match self.connection.fill().await {
                    Ok(()) => self.stream.append(&mut self.connection.buffered),
                    Err(_) => self.ended = true,
                }
            }
        }
    }

    /// The next event; `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<Result<SubscribeToShardEvent, ClientError>> {
        let message = match self.next_message().await {
            Ok(Some(message)) => message,
            Ok(None) => return None,
            Err(error) => {
                self.ended = true;
                self.stream.clear();
                return Some(Err(error));
            }
        };
        let document: Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        if let Some(exception) = message.exception_type {
            self.ended = true;
            self.stream.clear();
            return Some(Err(service_error(&exception, document["message"].as_str().unwrap_or("").to_owned())));
        }
        Some(event_from_json(&document))
    }
}

fn event_from_json(document: &Value) -> Result<SubscribeToShardEvent, ClientError> {
    Ok(SubscribeToShardEvent {
        records: records_from_json(&document["Records"])?,
        continuation_sequence_number: document["ContinuationSequenceNumber"].as_str().unwrap_or("").to_owned(),
        millis_behind_latest: document["MillisBehindLatest"].as_i64().unwrap_or(0),
        child_shards: None,
    })
}

/// Records of a GetRecords output or an event.
pub fn records_from_json(records: &Value) -> Result<Vec<Record>, ClientError> {
    let Some(records) = records.as_array() else { return Ok(Vec::new()) };
    records
        .iter()
        .map(|record| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(record["Data"].as_str().unwrap_or(""))
                .map_err(|error| protocol_error(format!("Data is not base64: {error}")))?;
            Ok(Record {
                sequence_number: record["SequenceNumber"].as_str().unwrap_or("").to_owned(),
                approximate_arrival_timestamp: record["ApproximateArrivalTimestamp"]
                    .as_f64()
                    .map(|seconds| Timestamp::from_epoch_ms((seconds * 1_000.0).round() as i64)),
                data: Bytes::from(data),
                partition_key: record["PartitionKey"].as_str().unwrap_or("").to_owned(),
                encryption_type: None,
            })
        })
        .collect()
}

/// `Data` as the JSON protocol carries it.
pub fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event-stream message with string headers, as sluiced's encoder writes it.
    fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let headers_bytes: Vec<u8> = headers
            .iter()
            .flat_map(|(name, value)| {
                let mut h = vec![name.len() as u8];
                h.extend_from_slice(name.as_bytes());
                h.push(7);
                h.extend_from_slice(&(value.len() as u16).to_be_bytes());
                h.extend_from_slice(value.as_bytes());
                h
            })
            .collect();
        let total = 16 + headers_bytes.len() + payload.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers_bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]); // prelude CRC: not checked here (TCP and the server's tests cover it)
        out.extend_from_slice(&headers_bytes);
        out.extend_from_slice(payload);
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn event_stream_messages_decode_whole_or_not_at_all() {
        let payload = br#"{"Records":[{"Data":"U0xHMQ==","SequenceNumber":"1","PartitionKey":"k"}],"ContinuationSequenceNumber":"1","MillisBehindLatest":7}"#;
        let bytes = encode_message(&[(":message-type", "event"), (":event-type", "SubscribeToShardEvent")], payload);
        for cut in 0..bytes.len() {
            assert!(decode_message(&bytes[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (message, used) = decode_message(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(message.event_type.as_deref(), Some("SubscribeToShardEvent"));
        let event = event_from_json(&serde_json::from_slice(&message.payload).unwrap()).unwrap();
        assert_eq!(event.millis_behind_latest, 7);
        assert_eq!(&event.records[0].data[..], b"SLG1");
        assert!(decode_message(&[0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0]).is_err(), "lengths that cannot be");
    }

    #[test]
    fn exception_names_map_to_error_codes() {
        let code = |name: &str| service_error(name, String::new()).code();
        assert_eq!(code("ProvisionedThroughputExceededException"), Some(ErrorCode::ProvisionedThroughputExceeded));
        assert_eq!(code("com.amazonaws.kinesis#ResourceNotFoundException"), Some(ErrorCode::ResourceNotFound));
        assert_eq!(code("ExpiredIteratorException:extra"), Some(ErrorCode::ExpiredIterator));
        assert_eq!(code("InternalFailure"), Some(ErrorCode::InternalFailure));
        assert_eq!(code("SomethingNew"), Some(ErrorCode::InternalFailure));
    }
}
