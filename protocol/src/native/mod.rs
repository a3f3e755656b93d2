//! The native codec: model [`Request`]s and [`Response`]s to frames and back, both
//! directions, for the server and the client alike.
//!
//! - Client: [`encode_request`] a request into a frame; [`decode_response`] the frames that
//!   come back (a response, an error, or a subscription's events and end).
//! - Server: [`decode_request`] a frame into a request; [`encode_response`], [`encode_error`],
//!   [`encode_event`] and [`encode_subscription_end`] the answers.
//! - Firehose (delivery streams, `firehose`): a [`sluice_model::FirehoseRequest`] encodes with
//!   [`EncodeInput`]; a server decodes frames of both APIs with [`decode_any_request`] and
//!   answers with [`encode_firehose_response`]; the client reads
//!   [`ResponseMessage::Firehose`].
//!
//! Decoding copies no payload: a record's data is a [`Bytes`] slice of the frame it arrived
//! in. Sequence numbers and hash keys travel as 16-byte structs, so no record costs a decimal
//! formatting or parse on this protocol.
//!
//! A request missing a member the model requires decodes to the ValidationException AWS
//! would answer (`Value null at 'streamName' ...`), and an enum value this build does not know
//! to the enum-set one, both under the request's correlation id; a frame that is not a
//! verifiable flatbuffer is a [`FrameError`] (the server answers SerializationException with
//! correlation id 0 and closes). Responses are held to the model in turn: a required member
//! the server left out is a [`DecodeError`].
//!
//! [`Request`]: sluice_model::Request
//! [`Response`]: sluice_model::Response
//! [`Bytes`]: bytes::Bytes
//! [`FrameError`]: crate::FrameError

mod convert;
mod firehose;
mod forwarded;
pub mod handshake;
mod leases;
mod request;
mod response;
mod routes;
#[cfg(test)]
mod schema_tests;
mod settings;
#[cfg(test)]
mod tests;

pub use firehose::{encode_firehose_response, firehose_capacity_for};
pub use forwarded::{encode_forwarded, Forwarded, ForwardedCaller};
pub use request::{
    decode_any_request, decode_request, encode_request, AnyRequestFrame, EncodeInput, NativeRequest, RequestFrame,
};
pub use response::{
    capacity_for, decode_response, encode_error, encode_event, encode_response, encode_subscription_end, ResponseFrame,
    ResponseMessage,
};

use crate::FrameError;

/// Why a request cannot be sent on the native protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The frame would be larger than the peer accepts.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A sequence number longer than 128 bits (AWS's own, 56 digits) has no native form;
    /// only the numbers Sluice issues travel here.
    #[error("{member} {value} does not fit in 128 bits, which is all the native protocol carries")]
    Unrepresentable { member: &'static str, value: String },
    /// An enum spelling this build does not know (kept from an AWS JSON answer) has no number.
    #[error(
        "{member} {value} is not a value this build knows, and the native protocol carries enum values as numbers"
    )]
    UnknownValue { member: &'static str, value: String },
    /// An operation the native schema has no table for yet (Kinesis queues: use the HTTP
    /// API).
    #[error("{operation} is not on the native protocol yet; call it over HTTP")]
    NotNative { operation: &'static str },
}

/// Why a response frame, verified as a flatbuffer, is not a valid answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The response lacks a member the model requires.
    #[error("the server's {shape} has no {member}")]
    MissingMember {
        /// The schema table, e.g. `PutRecordResponse`.
        shape: &'static str,
        /// The schema field, e.g. `sequence_number`.
        member: &'static str,
    },
    /// A response body this build does not know, or none with no error either.
    #[error("the server sent a response of body type {0}, which this build does not know")]
    UnknownBody(u8),
}
