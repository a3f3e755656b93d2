//! The native codec on arbitrary bytes, both directions: frames decode to the model or to an
//! error, never a panic; payloads are slices of the frame; and whatever decodes encodes again
//! to a frame that decodes to the same value (what the server and the client rely on). The
//! authentication handshake's decoders (`native::handshake`) get the same bytes and the same
//! round trip, and so do the Firehose operations' frames (`decode_any_request`, whose record
//! data must be slices of the frame).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::flatbuffers::FlatBufferBuilder;
use sluice_protocol::native::handshake::{self, HandshakeRequest, HandshakeResponse};
use sluice_model::FirehoseRequest;
use sluice_protocol::native::{self, EncodeError, EncodeInput, NativeRequest, ResponseMessage};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Some((correlation_id, HandshakeRequest::Authenticate(Ok(proof)))) = handshake::handshake_request(data) {
        let mut fbb = FlatBufferBuilder::new();
        if let Ok(again) = handshake::encode_authenticate(&mut fbb, correlation_id, &proof) {
            let again = handshake::handshake_request(again);
            assert_eq!(again, Some((correlation_id, HandshakeRequest::Authenticate(Ok(proof)))));
        }
    }
    if let Ok(Some((correlation_id, answer))) = handshake::decode_handshake_response(&frame) {
        let mut fbb = FlatBufferBuilder::new();
        let again = match &answer {
            HandshakeResponse::Hello { server_nonce, authentication_required } => {
                handshake::encode_hello_response(&mut fbb, correlation_id, server_nonce, *authentication_required)
            }
            HandshakeResponse::Authenticated { server_mac, principal_arn } => {
                handshake::encode_authenticate_response(&mut fbb, correlation_id, server_mac, principal_arn)
            }
            HandshakeResponse::Refused(error) => handshake::encode_refusal(&mut fbb, correlation_id, error),
        };
        if let Ok(again) = again {
            let again = Bytes::copy_from_slice(again);
            assert_eq!(handshake::decode_handshake_response(&again).unwrap(), Some((correlation_id, answer)));
        }
    }
    if let Ok(Some(decoded)) = native::decode_request(&frame) {
        if let Ok(request) = decoded.request {
            let mut fbb = FlatBufferBuilder::new();
            match native::encode_request(&mut fbb, decoded.correlation_id, &request) {
                Ok(again) => {
                    let again = Bytes::copy_from_slice(again);
                    let redecoded = native::decode_request(&again).unwrap().expect("a whole frame");
                    assert_eq!(redecoded.correlation_id, decoded.correlation_id);
                    assert_eq!(redecoded.request, Ok(request));
                }
                // Re-encoding may pad a frame at the limit past it; nothing else may fail.
                Err(EncodeError::Frame(_)) => {}
                Err(error) => panic!("a decoded request does not encode: {error}"),
            }
        }
    }
    if let Ok(Some(decoded)) = native::decode_any_request(&frame) {
        if let Ok(NativeRequest::Firehose(request)) = decoded.request {
            if let FirehoseRequest::PutRecordBatch { records, .. } = &request {
                let (outer, inner) = (frame.as_ptr_range(), records.iter().map(|data| data.as_ptr_range()));
                for data in inner.filter(|data| !data.is_empty()) {
                    assert!(outer.start <= data.start && data.end <= outer.end, "record data was copied");
                }
            }
            let mut fbb = FlatBufferBuilder::new();
            match request.encode(&mut fbb, decoded.correlation_id) {
                Ok(again) => {
                    let again = Bytes::copy_from_slice(again);
                    let redecoded = native::decode_any_request(&again).unwrap().expect("a whole frame");
                    assert_eq!(redecoded.request, Ok(NativeRequest::Firehose(request)));
                }
                Err(EncodeError::Frame(_)) => {}
                Err(error) => panic!("a decoded Firehose request does not encode: {error}"),
            }
        }
    }
    if let Ok(Some(decoded)) = native::decode_response(&frame) {
        let mut fbb = FlatBufferBuilder::new();
        let again = match &decoded.message {
            Ok(ResponseMessage::Response(response)) => native::encode_response(&mut fbb, 1, response),
            Ok(ResponseMessage::Event(event)) => native::encode_event(&mut fbb, 1, event),
            Ok(ResponseMessage::Error(error)) => native::encode_error(&mut fbb, 1, error),
            Ok(ResponseMessage::SubscriptionEnd) => native::encode_subscription_end(&mut fbb, 1),
            Ok(ResponseMessage::Firehose(response)) => native::encode_firehose_response(&mut fbb, 1, response),
            Err(_) => return,
        };
        if let Ok(again) = again {
            let again = Bytes::copy_from_slice(again);
            let redecoded = native::decode_response(&again).unwrap().expect("a whole frame");
            assert_eq!(redecoded.message, decoded.message);
        }
    }
});
