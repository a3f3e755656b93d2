//! The native protocol's authentication handshake, server side: what a connection does before
//! its first operation (docs/protocol.md section 7; the cryptography is
//! `sluice_security::challenge`'s, the frames `sluice_protocol::native::handshake`'s).
//!
//! With `--credentials`, a connection must open with Hello and then Authenticate, and runs its
//! operations as the principal it proved to be; each operation is then authorized by that
//! principal's policies exactly as over HTTP (`ops::dispatch::execute`). A connection that
//! sends anything else first, answers the challenge wrongly, or takes longer than
//! [`NATIVE_AUTH_TIMEOUT_MS`] gets AWS's error (MissingAuthenticationTokenException,
//! IncompleteSignatureException, InvalidSignatureException, UnrecognizedClientException,
//! ExpiredTokenException) under its own correlation id, is recorded in the audit log, and is
//! closed. Before it has authenticated, a connection's frames are bounded by
//! [`NATIVE_AUTH_FRAME_BYTES_MAX`].
//!
//! Without `--credentials` (open mode) a Hello is answered "not required" and every caller is
//! anonymous; a client that does not say Hello is served as before the handshake existed.

use crate::limits::{NATIVE_AUTH_FRAME_BYTES_MAX, NATIVE_AUTH_TIMEOUT_MS, RECEIVE_CHUNK_BYTES};
use crate::net::outbound::Outbound;
use crate::ops::audit;
use crate::ops::auth::{Authenticated, CallSource, Caller};
use crate::ops::node::Node;
use bytes::BytesMut;
use futures_lite::{future, AsyncRead, AsyncReadExt};
use sluice_model::{ErrorKind, KinesisError};
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::native::handshake::{self, AuthenticateFields, HandshakeRequest};
use sluice_protocol::native::ForwardedCaller;
use sluice_security::challenge::{PendingChallenge, Proof};
use sluice_security::credentials::CredentialStore;
use sluice_security::limits::CHALLENGE_NONCE_BYTES;
use sluice_security::members::is_member_key;
use sluice_security::sigv4::{AuthError, AuthErrorKind, TOKEN_EXPIRED, TOKEN_INVALID};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

const _: () = assert!(CHALLENGE_NONCE_BYTES == handshake::HANDSHAKE_NONCE_BYTES);

/// AWS's message for a request that carries no credentials at all.
const MISSING_AUTHENTICATION_TOKEN: &str = "Missing Authentication Token";

/// A handshake answer's builder capacity: the largest is a MAC and an ARN.
const HANDSHAKE_BUILDER_BYTES: usize = 512;

/// What the connection knows about its peer.
#[derive(Debug, Clone, Copy)]
pub struct NativePeer {
    pub address: Option<SocketAddr>,
    /// Whether the connection is TLS (`aws:SecureTransport`).
    pub secure: bool,
}

/// The RFC 5705 exporter output both sides bind the proof to over TLS; empty over plain TCP.
pub type ChannelBinding = Vec<u8>;

/// How the handshake ended.
pub enum Opened {
    /// Serve the connection's operations as this caller. In open mode the first ordinary frame
    /// may already be in the buffer.
    Caller(Caller),
    /// Another cluster member authenticated (with its key from `--cluster-secret`): it may
    /// carry its clients' requests ([`forwarded_caller`]); its own are denied.
    Member(Caller),
    /// The connection was refused (and told why) or went away: close it.
    Closed,
}

/// Runs the handshake at the start of a connection; on success the buffer holds whatever the
/// client sent after it.
pub async fn open<R: AsyncRead + Unpin>(
    node: &Rc<Node>,
    reader: &mut R,
    buffer: &mut BytesMut,
    sink: &Outbound,
    peer: NativePeer,
    channel_binding: &[u8],
) -> Opened {
    match node.shared.config.security.credentials.as_ref().map(|credentials| credentials.current()) {
        None => open_mode(node, reader, buffer, sink).await,
        Some(store) => {
            let handshake = authenticate(node, &store, reader, buffer, sink, peer, channel_binding);
            let timeout = async {
                glommio::timer::sleep(Duration::from_millis(NATIVE_AUTH_TIMEOUT_MS)).await;
                let source = source(peer);
                let error = KinesisError::new(
                    ErrorKind::MissingAuthenticationToken,
                    format!("{MISSING_AUTHENTICATION_TOKEN}: the connection did not authenticate within {NATIVE_AUTH_TIMEOUT_MS} ms"),
                );
                audit::record_refusal(node, "Authenticate", None, &source, error.kind.exception_name(), &error.message);
                let _ = sink.send(refusal(0, &error)).await;
                Opened::Closed
            };
            future::or(handshake, timeout).await
        }
    }
}

/// Open mode: answer a Hello, if the client opens with one, with "not required".
async fn open_mode<R: AsyncRead + Unpin>(
    node: &Rc<Node>,
    reader: &mut R,
    buffer: &mut BytesMut,
    sink: &Outbound,
) -> Opened {
    let Some(len) = whole_frame(node, reader, buffer, usize::MAX).await else {
        // Closed, or a bad length prefix the ordinary loop answers.
        return Opened::Caller(Caller::Anonymous);
    };
    if let Some((correlation_id, HandshakeRequest::Hello)) = handshake::handshake_request(&buffer[..len]) {
        let _ = buffer.split_to(len);
        let pending = PendingChallenge::new(node.identity().region());
        let mut fbb = FlatBufferBuilder::with_capacity(HANDSHAKE_BUILDER_BYTES);
        let frame =
            handshake::encode_hello_response(&mut fbb, correlation_id, &pending.challenge().server_nonce, false)
                .expect("a Hello answer fits a frame");
        if sink.send(frame.to_vec()).await.is_err() {
            return Opened::Closed;
        }
    }
    Opened::Caller(Caller::Anonymous)
}

/// With credentials: Hello, then Authenticate, or a refusal.
async fn authenticate<R: AsyncRead + Unpin>(
    node: &Rc<Node>,
    store: &Arc<CredentialStore>,
    reader: &mut R,
    buffer: &mut BytesMut,
    sink: &Outbound,
    peer: NativePeer,
    channel_binding: &[u8],
) -> Opened {
    let source = source(peer);
    let refuse = |correlation_id: u64, operation: &str, access_key_id: Option<&str>, error: KinesisError| {
        audit::record_refusal(node, operation, access_key_id, &source, error.kind.exception_name(), &error.message);
        async move {
            let _ = sink.send(refusal(correlation_id, &error)).await;
            Opened::Closed
        }
    };
    let Some(len) = whole_frame(node, reader, buffer, NATIVE_AUTH_FRAME_BYTES_MAX).await else {
        return refuse(0, "Authenticate", None, too_large_or_gone()).await;
    };
    let frame = buffer.split_to(len).freeze();
    let correlation_id = match handshake::handshake_request(&frame) {
        Some((correlation_id, HandshakeRequest::Hello)) => correlation_id,
        Some((correlation_id, HandshakeRequest::Authenticate(_))) => {
            let error = KinesisError::new(
                ErrorKind::IncompleteSignature,
                "The handshake's Authenticate must answer the challenge of a Hello; send Hello first.",
            );
            return refuse(correlation_id, "Authenticate", None, error).await;
        }
        None => {
            let (correlation_id, operation) = ordinary(&frame);
            let error = KinesisError::new(ErrorKind::MissingAuthenticationToken, MISSING_AUTHENTICATION_TOKEN);
            return refuse(correlation_id, &operation, None, error).await;
        }
    };
    let pending = PendingChallenge::new(node.identity().region());
    let mut fbb = FlatBufferBuilder::with_capacity(HANDSHAKE_BUILDER_BYTES);
    let challenge = handshake::encode_hello_response(&mut fbb, correlation_id, &pending.challenge().server_nonce, true)
        .expect("a Hello answer fits a frame");
    if sink.send(challenge.to_vec()).await.is_err() {
        return Opened::Closed;
    }

    let Some(len) = whole_frame(node, reader, buffer, NATIVE_AUTH_FRAME_BYTES_MAX).await else {
        return refuse(0, "Authenticate", None, too_large_or_gone()).await;
    };
    let frame = buffer.split_to(len).freeze();
    let (correlation_id, fields) = match handshake::handshake_request(&frame) {
        Some((correlation_id, HandshakeRequest::Authenticate(Ok(fields)))) => (correlation_id, fields),
        Some((correlation_id, HandshakeRequest::Authenticate(Err(error)))) => {
            return refuse(correlation_id, "Authenticate", None, error).await;
        }
        Some((correlation_id, HandshakeRequest::Hello)) => {
            let error = KinesisError::new(ErrorKind::IncompleteSignature, "Hello was sent twice; answer the first.");
            return refuse(correlation_id, "Authenticate", None, error).await;
        }
        None => {
            let (correlation_id, operation) = ordinary(&frame);
            let error = KinesisError::new(ErrorKind::MissingAuthenticationToken, MISSING_AUTHENTICATION_TOKEN);
            return refuse(correlation_id, &operation, None, error).await;
        }
    };
    let AuthenticateFields { access_key_id, timestamp_ms, client_nonce, session_token, mac } = fields;
    let proof = Proof { access_key_id, timestamp_ms, client_nonce, session_token, mac };
    // A member's key is checked against the members' (the credentials file cannot hold one).
    let members = node.shared.config.security.members.as_ref();
    let member_store = members.filter(|_| is_member_key(&proof.access_key_id)).map(|members| &members.store);
    let store: &CredentialStore = member_store.unwrap_or(store);
    let (principal, server_proof) = match pending.verify(&proof, store, channel_binding, node.now_ms()) {
        Ok(verified) => verified,
        Err(error) => {
            return refuse(correlation_id, "Authenticate", Some(&proof.access_key_id), kinesis_error(error)).await
        }
    };
    let mut fbb = FlatBufferBuilder::with_capacity(HANDSHAKE_BUILDER_BYTES);
    let answer = handshake::encode_authenticate_response(&mut fbb, correlation_id, &server_proof.mac, &principal.arn)
        .expect("an Authenticate answer fits a frame");
    if sink.send(answer.to_vec()).await.is_err() {
        return Opened::Closed;
    }
    tracing::debug!(principal = %principal.arn, address = ?peer.address, "native connection authenticated");
    let caller = Caller::Principal(Authenticated {
        principal: store.shared(&proof.access_key_id).expect("the store verified this key"),
        source,
        secure_transport: peer.secure,
    });
    match member_store {
        Some(_) => Opened::Member(caller),
        None => Opened::Caller(caller),
    }
}

/// Who a forwarded request runs as, on a connection whose own caller is `connection` (a
/// member's if `member`): in open mode, anyone (as any request there); with credentials, the
/// client the forwarding member carried, looked up in this node's credentials file, and only
/// if a member sends it.
pub fn forwarded_caller(
    node: &Node,
    connection: &Caller,
    member: bool,
    carried: Option<ForwardedCaller>,
) -> Result<Caller, KinesisError> {
    let Some(credentials) = node.shared.config.security.credentials.as_ref() else {
        return Ok(Caller::Anonymous);
    };
    if !member {
        let arn = connection.principal().map_or("an anonymous caller", |principal| principal.arn.as_str());
        return Err(KinesisError::new(
            ErrorKind::AccessDenied,
            format!(
                "User: {arn} is not authorized to perform: ForwardedRequest: only a cluster member (authenticated with its key from --cluster-secret) forwards requests"
            ),
        ));
    }
    let Some(carried) = carried else {
        return Err(KinesisError::new(
            ErrorKind::MissingAuthenticationToken,
            format!(
                "{MISSING_AUTHENTICATION_TOKEN}: a forwarded request must name its caller on a node with credentials"
            ),
        ));
    };
    let principal = credentials
        .current()
        .shared(&carried.access_key_id)
        .ok_or_else(|| KinesisError::new(ErrorKind::UnrecognizedClient, TOKEN_INVALID))?;
    if principal.session_token_expires_ms().is_some_and(|expires| node.now_ms() >= expires) {
        return Err(KinesisError::new(ErrorKind::ExpiredToken, TOKEN_EXPIRED));
    }
    Ok(Caller::Principal(Authenticated {
        principal,
        source: CallSource {
            source_ip: carried.source_ip.and_then(|ip| ip.parse().ok()),
            user_agent: carried.user_agent,
            request_id: carried.request_id,
        },
        secure_transport: carried.secure_transport,
    }))
}

fn source(peer: NativePeer) -> CallSource {
    CallSource {
        source_ip: peer.address.map(|address| address.ip()),
        user_agent: Some("sluice-native".to_string()),
        request_id: None,
    }
}

fn too_large_or_gone() -> KinesisError {
    KinesisError::new(
        ErrorKind::MissingAuthenticationToken,
        format!(
            "{MISSING_AUTHENTICATION_TOKEN}: authenticate (Hello, Authenticate) before sending frames larger than {NATIVE_AUTH_FRAME_BYTES_MAX} bytes"
        ),
    )
}

/// The correlation id and operation of a frame that is no handshake, for its refusal.
fn ordinary(frame: &bytes::Bytes) -> (u64, String) {
    match sluice_protocol::native::decode_request(frame) {
        Ok(Some(decoded)) => {
            let operation = decoded.request.as_ref().map_or("Unknown", |request| request.operation().name());
            (decoded.correlation_id, operation.to_string())
        }
        _ => (0, "Unknown".to_string()),
    }
}

fn refusal(correlation_id: u64, error: &KinesisError) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(HANDSHAKE_BUILDER_BYTES + error.message.len());
    handshake::encode_refusal(&mut fbb, correlation_id, error).expect("an error frame fits").to_vec()
}

/// The Kinesis error of a refused proof: the same exception and message as SigV4's.
pub fn kinesis_error(error: AuthError) -> KinesisError {
    let kind = match error.kind {
        AuthErrorKind::MissingAuthenticationToken => ErrorKind::MissingAuthenticationToken,
        AuthErrorKind::IncompleteSignature => ErrorKind::IncompleteSignature,
        AuthErrorKind::InvalidSignature => ErrorKind::InvalidSignature,
        AuthErrorKind::UnrecognizedClient => ErrorKind::UnrecognizedClient,
        AuthErrorKind::ExpiredToken => ErrorKind::ExpiredToken,
    };
    KinesisError::new(kind, error.message)
}

/// Reads until the buffer starts with a whole frame of at most `bytes_max` bytes, and returns
/// its length; `None` if the connection closed, the node is shutting down, the length prefix
/// is bad or the frame would be larger.
async fn whole_frame<R: AsyncRead + Unpin>(
    node: &Rc<Node>,
    reader: &mut R,
    buffer: &mut BytesMut,
    bytes_max: usize,
) -> Option<usize> {
    loop {
        let wanted = match sluice_protocol::frame_len(buffer) {
            Ok(Some(len)) if len > bytes_max => return None,
            Ok(Some(len)) if buffer.len() >= len => return Some(len),
            Ok(Some(len)) => len - buffer.len(),
            Ok(None) => 1,
            Err(_) => return None,
        };
        let start = buffer.len();
        buffer.resize(start + wanted.max(RECEIVE_CHUNK_BYTES).min(bytes_max), 0);
        let read = future::or(async { Some(reader.read(&mut buffer[start..]).await) }, async {
            node.signal.triggered().await;
            None
        })
        .await;
        match read {
            Some(Ok(read)) if read > 0 => buffer.truncate(start + read),
            _ => {
                buffer.truncate(start);
                return None;
            }
        }
    }
}
