//! What can go wrong with a request: the server's answer, or the connection under it.

use std::io;
use std::sync::Arc;

use sluice_model::{ErrorKind, KinesisError};
use sluice_protocol::native::{DecodeError, EncodeError};
use sluice_protocol::FrameError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered the request with an error: a Kinesis exception.
    #[error("{0}")]
    Service(KinesisError),
    /// No connection could be opened to `addr`.
    #[error("could not connect to {addr}: {error}")]
    Connect { addr: String, error: io::Error },
    /// The connection failed, before or while the request was in flight. Every request on
    /// the connection fails with the same cause; open a new [`crate::Client`] to go on.
    #[error("{0}")]
    Connection(#[from] ConnectionError),
    /// The request cannot be sent: its frame would be larger than the server accepts, or it
    /// holds a value the native protocol cannot carry. Nothing was sent; the connection is
    /// unaffected.
    #[error("the {operation} request cannot be sent: {error}")]
    Encode { operation: &'static str, error: EncodeError },
    /// The server answered with a body that does not belong to the operation. The connection
    /// is unaffected.
    #[error("the server answered {operation} with {body}")]
    UnexpectedResponse { operation: &'static str, body: String },
    /// The answer breaks the model (a required member missing, a value this build does not
    /// know). The connection is unaffected.
    #[error("{0}")]
    Decode(DecodeError),
}

impl ClientError {
    /// The Kinesis exception, if the server answered with one.
    pub fn code(&self) -> Option<ErrorKind> {
        match self {
            Self::Service(error) => Some(error.kind),
            _ => None,
        }
    }
}

/// Why a connection stopped working. Cloned into the error of every request it fails.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The server closed the connection between frames.
    #[error("the server closed the connection")]
    Closed,
    /// The server closed the connection part-way through a response frame.
    #[error("the server closed the connection in the middle of a frame ({buffered_bytes} bytes of it received)")]
    ClosedMidFrame { buffered_bytes: usize },
    /// Reading or writing the socket failed.
    #[error("connection I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The server sent bytes that are not a response frame. The client closed the
    /// connection, since it can no longer tell where the next frame starts.
    #[error("the server sent an invalid frame: {0}")]
    Frame(FrameError),
    /// The server reported a connection-level error (correlation id 0, docs/protocol.md
    /// section 4) and closes the connection.
    #[error("the server rejected the connection: {0}")]
    Rejected(KinesisError),
    /// The server sent a response under a correlation id no request is waiting on, or a
    /// body out of the protocol's order; the client cannot trust the stream any more.
    #[error("protocol violation by the server under correlation id {correlation_id}: {reason}")]
    Protocol { correlation_id: u64, reason: String },
    /// A request's future was dropped while its frame was part-way written, which leaves the
    /// byte stream unframeable, so the client closed the connection.
    #[error("a request was cancelled while its frame was part-way written; the connection was closed")]
    WriteCancelled,
}
