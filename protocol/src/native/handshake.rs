//! The native protocol's authentication handshake (docs/protocol.md section 7): the frames,
//! not the cryptography, which is `sluice_security::challenge`'s.
//!
//! ```text
//! client                                   server
//!   Hello                ───────────────►
//!                        ◄───────────────   HelloResponse { server_nonce, authentication_required }
//!   Authenticate { key id, time,
//!     client_nonce, token, mac } ────────►
//!                        ◄───────────────   AuthenticateResponse { server_mac, principal_arn }
//!                                           or an error (UnrecognizedClient, InvalidSignature…)
//! ```
//!
//! The handshake uses ordinary request and response frames (two members appended to each
//! union), so a server that requires it can answer a client that skipped it with a
//! MissingAuthenticationTokenException under the client's own correlation id, and a client
//! from before the handshake reads that error like any other. The nonces and MACs have fixed
//! lengths, checked here, so the layers above handle arrays, not slices of any length.

use super::convert::error_code;
use crate::flatbuffers::FlatBufferBuilder;
use crate::{create_bytes, wire, FrameError, RequestBodyRef, ResponseBodyRef};
use bytes::Bytes;
use sluice_model::{ErrorKind, KinesisError};

type Fbb = FlatBufferBuilder<'static>;

/// Bytes of each nonce (the server's and the client's): 256 bits, never repeated by chance.
pub const HANDSHAKE_NONCE_BYTES: usize = 32;
/// Bytes of each MAC: one HMAC-SHA256.
pub const HANDSHAKE_MAC_BYTES: usize = 32;
/// Characters of an access key id a proof may name (IAM: at most 128).
pub const ACCESS_KEY_ID_CHARS_MAX: usize = 128;
/// Bytes of a session token a proof may carry (STS tokens are up to about 2 KiB; AWS allows
/// larger ones in principle, so 8 KiB, which still bounds the work of comparing it).
pub const SESSION_TOKEN_BYTES_MAX: usize = 8 * 1024;

/// The client's proof, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateFields {
    pub access_key_id: String,
    pub timestamp_ms: i64,
    pub client_nonce: [u8; HANDSHAKE_NONCE_BYTES],
    pub session_token: Option<String>,
    pub mac: [u8; HANDSHAKE_MAC_BYTES],
}

/// A handshake request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeRequest {
    Hello,
    /// The proof, or the IncompleteSignatureException its malformation earns.
    Authenticate(Result<AuthenticateFields, KinesisError>),
}

/// What the server's side of the handshake reads from one frame: `None` for an ordinary
/// request (or a frame that does not verify: the ordinary decoder then says why).
pub fn handshake_request(frame: &[u8]) -> Option<(u64, HandshakeRequest)> {
    let (_, envelope) = crate::decode_request(frame).ok()??;
    let message = match RequestBodyRef::of(&envelope) {
        RequestBodyRef::Hello(_) => HandshakeRequest::Hello,
        RequestBodyRef::Authenticate(t) => HandshakeRequest::Authenticate(proof_of(t)),
        _ => return None,
    };
    Some((envelope.correlation_id(), message))
}

fn incomplete(message: String) -> KinesisError {
    KinesisError::new(ErrorKind::IncompleteSignature, message)
}

fn fixed<const N: usize>(bytes: Option<flatbuffers::Vector<'_, u8>>, member: &str) -> Result<[u8; N], KinesisError> {
    let bytes = bytes.map(|vector| vector.bytes()).unwrap_or_default();
    bytes
        .try_into()
        .map_err(|_| incomplete(format!("The handshake's {member} must be {N} bytes, not {}.", bytes.len())))
}

fn proof_of(t: wire::AuthenticateRequest<'_>) -> Result<AuthenticateFields, KinesisError> {
    let access_key_id = t.access_key_id().unwrap_or_default();
    if access_key_id.is_empty() || access_key_id.chars().count() > ACCESS_KEY_ID_CHARS_MAX {
        return Err(incomplete(format!(
            "The handshake must name an access key id of 1 to {ACCESS_KEY_ID_CHARS_MAX} characters."
        )));
    }
    if t.session_token().is_some_and(|token| token.len() > SESSION_TOKEN_BYTES_MAX) {
        return Err(incomplete(format!("The session token is longer than {SESSION_TOKEN_BYTES_MAX} bytes.")));
    }
    Ok(AuthenticateFields {
        access_key_id: access_key_id.to_owned(),
        timestamp_ms: t.timestamp_ms(),
        client_nonce: fixed(t.client_nonce(), "client nonce")?,
        session_token: t.session_token().map(str::to_owned),
        mac: fixed(t.mac(), "MAC")?,
    })
}

/// The client's Hello.
pub fn encode_hello(fbb: &mut Fbb, correlation_id: u64) -> Result<&[u8], FrameError> {
    let body = wire::HelloRequest::create(fbb, &wire::HelloRequestArgs {});
    crate::encode_request(fbb, correlation_id, body)
}

/// The client's proof.
pub fn encode_authenticate<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    proof: &AuthenticateFields,
) -> Result<&'f [u8], FrameError> {
    let access_key_id = Some(fbb.create_string(&proof.access_key_id));
    let client_nonce = Some(create_bytes(fbb, &proof.client_nonce));
    let session_token = proof.session_token.as_deref().map(|token| fbb.create_string(token));
    let mac = Some(create_bytes(fbb, &proof.mac));
    let body = wire::AuthenticateRequest::create(
        fbb,
        &wire::AuthenticateRequestArgs {
            access_key_id,
            timestamp_ms: proof.timestamp_ms,
            client_nonce,
            session_token,
            mac,
        },
    );
    crate::encode_request(fbb, correlation_id, body)
}

/// The server's challenge.
pub fn encode_hello_response<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    server_nonce: &[u8; HANDSHAKE_NONCE_BYTES],
    authentication_required: bool,
) -> Result<&'f [u8], FrameError> {
    let server_nonce = Some(create_bytes(fbb, server_nonce));
    let body = wire::HelloResponse::create(fbb, &wire::HelloResponseArgs { server_nonce, authentication_required });
    crate::encode_response(fbb, correlation_id, body)
}

/// The server's proof, and the principal the client is now.
pub fn encode_authenticate_response<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    server_mac: &[u8; HANDSHAKE_MAC_BYTES],
    principal_arn: &str,
) -> Result<&'f [u8], FrameError> {
    let server_mac = Some(create_bytes(fbb, server_mac));
    let principal_arn = Some(fbb.create_string(principal_arn));
    let body = wire::AuthenticateResponse::create(fbb, &wire::AuthenticateResponseArgs { server_mac, principal_arn });
    crate::encode_response(fbb, correlation_id, body)
}

/// A refusal of the handshake (or of a request that came without it).
pub fn encode_refusal<'f>(fbb: &'f mut Fbb, correlation_id: u64, error: &KinesisError) -> Result<&'f [u8], FrameError> {
    crate::encode_error_response(fbb, correlation_id, error_code(error.kind), &error.message)
}

/// A handshake answer, decoded by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeResponse {
    Hello {
        server_nonce: [u8; HANDSHAKE_NONCE_BYTES],
        authentication_required: bool,
    },
    Authenticated {
        server_mac: [u8; HANDSHAKE_MAC_BYTES],
        principal_arn: String,
    },
    /// The server refused: its error (for a server from before the handshake, the
    /// UnknownOperationException it gives a request body it does not know).
    Refused(KinesisError),
}

/// Why a handshake answer is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeDecodeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the server answered the handshake with {0}")]
    Unexpected(String),
}

/// Decodes the whole response frame `frame` as a handshake answer: `Ok(None)` if it is
/// shorter than its length prefix says.
pub fn decode_handshake_response(frame: &Bytes) -> Result<Option<(u64, HandshakeResponse)>, HandshakeDecodeError> {
    let Some((_, envelope)) = crate::decode_response(frame)? else { return Ok(None) };
    let correlation_id = envelope.correlation_id();
    if let Some(error) = envelope.error() {
        let kind = super::convert::error_kind(error.code());
        let message = error.message().unwrap_or_default();
        return Ok(Some((correlation_id, HandshakeResponse::Refused(KinesisError::new(kind, message)))));
    }
    let wrong = |what: &str| HandshakeDecodeError::Unexpected(format!("{what} of the wrong length"));
    let answer = match ResponseBodyRef::of(&envelope) {
        ResponseBodyRef::Hello(t) => HandshakeResponse::Hello {
            server_nonce: t
                .server_nonce()
                .map(|v| v.bytes())
                .unwrap_or_default()
                .try_into()
                .map_err(|_| wrong("a nonce"))?,
            authentication_required: t.authentication_required(),
        },
        ResponseBodyRef::Authenticate(t) => HandshakeResponse::Authenticated {
            server_mac: t.server_mac().map(|v| v.bytes()).unwrap_or_default().try_into().map_err(|_| wrong("a MAC"))?,
            principal_arn: t.principal_arn().unwrap_or_default().to_owned(),
        },
        other => return Err(HandshakeDecodeError::Unexpected(format!("{other:?}"))),
    };
    Ok(Some((correlation_id, answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fbb() -> Fbb {
        FlatBufferBuilder::new()
    }

    fn proof() -> AuthenticateFields {
        AuthenticateFields {
            access_key_id: "AKIAALICE".into(),
            timestamp_ms: 1_764_000_000_000,
            client_nonce: [7; HANDSHAKE_NONCE_BYTES],
            session_token: Some("token".into()),
            mac: [9; HANDSHAKE_MAC_BYTES],
        }
    }

    #[test]
    fn requests_round_trip_and_ordinary_frames_are_not_handshakes() {
        let mut builder = fbb();
        let hello = encode_hello(&mut builder, 1).unwrap().to_vec();
        assert_eq!(handshake_request(&hello), Some((1, HandshakeRequest::Hello)));
        let mut builder = fbb();
        let frame = encode_authenticate(&mut builder, 2, &proof()).unwrap().to_vec();
        assert_eq!(handshake_request(&frame), Some((2, HandshakeRequest::Authenticate(Ok(proof())))));
        let mut builder = fbb();
        let limits = super::super::encode_request(
            &mut builder,
            3,
            &sluice_model::Request::DescribeLimits(sluice_model::DescribeLimitsInput {}),
        )
        .unwrap()
        .to_vec();
        assert_eq!(handshake_request(&limits), None);
        assert_eq!(handshake_request(b"garbage"), None);
        // And the ordinary decoder refuses a handshake frame with an error, not a panic.
        let decoded = super::super::decode_request(&Bytes::from(hello)).unwrap().unwrap();
        assert_eq!(decoded.request.unwrap_err().kind, ErrorKind::UnknownOperation);
    }

    #[test]
    fn malformed_proofs_are_incomplete_signatures() {
        let check = |proof: AuthenticateFields, expected: &str| {
            let mut builder = fbb();
            let frame = encode_authenticate(&mut builder, 5, &proof).unwrap().to_vec();
            let Some((5, HandshakeRequest::Authenticate(Err(error)))) = handshake_request(&frame) else {
                panic!("not refused: {proof:?}")
            };
            assert_eq!(error.kind, ErrorKind::IncompleteSignature);
            assert!(error.message.contains(expected), "{}", error.message);
        };
        check(AuthenticateFields { access_key_id: String::new(), ..proof() }, "access key id");
        check(AuthenticateFields { access_key_id: "A".repeat(129), ..proof() }, "access key id");
        check(AuthenticateFields { session_token: Some("t".repeat(SESSION_TOKEN_BYTES_MAX + 1)), ..proof() }, "token");
        // A short nonce or MAC, built by hand since the encoder takes arrays.
        let mut builder = fbb();
        let access_key_id = Some(builder.create_string("AKIAALICE"));
        let client_nonce = Some(create_bytes(&mut builder, &[1; 31]));
        let body = wire::AuthenticateRequest::create(
            &mut builder,
            &wire::AuthenticateRequestArgs { access_key_id, client_nonce, ..Default::default() },
        );
        let frame = crate::encode_request(&mut builder, 6, body).unwrap().to_vec();
        let Some((6, HandshakeRequest::Authenticate(Err(error)))) = handshake_request(&frame) else { panic!() };
        assert_eq!(error.message, "The handshake's client nonce must be 32 bytes, not 31.");
    }

    #[test]
    fn responses_round_trip() {
        let mut builder = fbb();
        let frame = Bytes::from(encode_hello_response(&mut builder, 1, &[3; 32], true).unwrap().to_vec());
        assert_eq!(
            decode_handshake_response(&frame).unwrap(),
            Some((1, HandshakeResponse::Hello { server_nonce: [3; 32], authentication_required: true }))
        );
        let mut builder = fbb();
        let frame = encode_authenticate_response(&mut builder, 2, &[4; 32], "arn:aws:iam::1:user/alice").unwrap();
        let frame = Bytes::from(frame.to_vec());
        assert_eq!(
            decode_handshake_response(&frame).unwrap(),
            Some((
                2,
                HandshakeResponse::Authenticated {
                    server_mac: [4; 32],
                    principal_arn: "arn:aws:iam::1:user/alice".into()
                }
            ))
        );
        let refusal =
            KinesisError::new(ErrorKind::UnrecognizedClient, "The security token included in the request is invalid.");
        let mut builder = fbb();
        let frame = Bytes::from(encode_refusal(&mut builder, 2, &refusal).unwrap().to_vec());
        assert_eq!(decode_handshake_response(&frame).unwrap(), Some((2, HandshakeResponse::Refused(refusal))));
        // A cut frame is not yet whole; an ordinary answer is no handshake answer.
        assert_eq!(decode_handshake_response(&frame.slice(..frame.len() - 1)).unwrap(), None);
        let mut builder = fbb();
        let other = super::super::encode_response(
            &mut builder,
            3,
            &sluice_model::Response::UpdateStreamMode(sluice_model::Empty {}),
        )
        .unwrap();
        let other = Bytes::from(other.to_vec());
        assert!(matches!(decode_handshake_response(&other), Err(HandshakeDecodeError::Unexpected(_))));
    }
}
