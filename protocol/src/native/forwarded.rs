//! A client's request one cluster member forwards to the member that leads it (`sluice.fbs`'s
//! "Forwarding" section, `docs/cluster.md`): the request's own frame, wrapped with who the
//! client is, as the forwarding member authenticated it.
//!
//! The wrapper carries the inner frame as bytes rather than as a second body in the envelope,
//! so every request that has a native form is forwarded as it is encoded for a client, and
//! the leader decodes it with the same code (one more verification of the same bytes). The
//! inner frame must be exactly one whole Kinesis request frame, and not another wrapper: a
//! request is forwarded at most once. `super::request::decode_any_request` decodes it.

use crate::flatbuffers::FlatBufferBuilder;
use crate::{frame_len, wire, FrameError};
use bytes::Bytes;
use sluice_model::{ErrorKind, KinesisError, Request};

type Fbb = FlatBufferBuilder<'static>;

/// The client of a forwarded request, as the forwarding member saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardedCaller {
    pub access_key_id: String,
    pub source_ip: Option<String>,
    pub secure_transport: bool,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A forwarded request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// `None`: the client was anonymous (a cluster without credentials).
    pub caller: Option<ForwardedCaller>,
    pub request: Request,
}

/// Wraps `request_frame` (a whole request frame, as [`super::encode_request`] made it) for
/// the member that leads it, under `correlation_id`.
pub fn encode_forwarded<'f>(
    fbb: &'f mut Fbb,
    correlation_id: u64,
    caller: Option<&ForwardedCaller>,
    request_frame: &[u8],
) -> Result<&'f [u8], FrameError> {
    let request = Some(fbb.create_vector(request_frame));
    let caller = caller.map(|caller| {
        let access_key_id = Some(fbb.create_string(&caller.access_key_id));
        let source_ip = caller.source_ip.as_deref().map(|ip| fbb.create_string(ip));
        let user_agent = caller.user_agent.as_deref().map(|agent| fbb.create_string(agent));
        let request_id = caller.request_id.as_deref().map(|id| fbb.create_string(id));
        wire::ForwardedCaller::create(
            fbb,
            &wire::ForwardedCallerArgs {
                access_key_id,
                source_ip,
                secure_transport: caller.secure_transport,
                user_agent,
                request_id,
            },
        )
    });
    let body = wire::ForwardedRequest::create(fbb, &wire::ForwardedRequestArgs { caller, request });
    crate::encode_request(fbb, correlation_id, body)
}

/// The caller and the inner request frame of a ForwardedRequest table of `frame`, or the
/// error its sender gets: a wrapper without one whole frame inside is malformed.
pub(super) fn parts_of(
    frame: &Bytes,
    t: wire::ForwardedRequest<'_>,
) -> Result<(Option<ForwardedCaller>, Bytes), KinesisError> {
    let caller = match t.caller() {
        None => None,
        Some(caller) => Some(ForwardedCaller {
            access_key_id: caller
                .access_key_id()
                .filter(|key| !key.is_empty())
                .ok_or_else(|| malformed("the caller has no access key id"))?
                .to_owned(),
            source_ip: caller.source_ip().map(str::to_owned),
            secure_transport: caller.secure_transport(),
            user_agent: caller.user_agent().map(str::to_owned),
            request_id: caller.request_id().map(str::to_owned),
        }),
    };
    let inner = t.request().ok_or_else(|| malformed("no request frame"))?.bytes();
    match frame_len(inner) {
        Ok(Some(len)) if len == inner.len() => Ok((caller, frame.slice_ref(inner))),
        _ => Err(malformed("the request is not one whole frame")),
    }
}

/// The SerializationException of a malformed wrapper.
pub(super) fn malformed(why: &str) -> KinesisError {
    KinesisError::new(ErrorKind::Serialization, format!("ForwardedRequest: {why}"))
}
