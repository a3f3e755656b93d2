//! The `application/vnd.amazon.eventstream` framing of SubscribeToShard responses.
//!
//! ```text
//! offset  size  field
//! 0       4     total_len: u32 big-endian, the whole message including both CRCs
//! 4       4     headers_len: u32 big-endian
//! 8       4     prelude_crc: CRC-32 (IEEE, as gzip) of bytes 0..8
//! 12      H     headers: name_len u8, name, value type u8, value (type 7, string: u16 length + UTF-8)
//! 12+H    P     payload
//! 12+H+P  4     message_crc: CRC-32 of bytes 0..12+H+P
//! ```
//!
//! Only string headers are written, which is all Kinesis sends (`:message-type`,
//! `:event-type` or `:exception-type`, `:content-type`). AWS's Rust crate for this framing
//! (aws-smithy-eventstream) needs a newer compiler than this workspace's minimum and brings
//! the smithy type crates with it, for 40 lines of framing; the tests below check this encoder
//! against the format byte by byte, and the boto3 suite reads it with botocore's own parser.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of framing around headers and payload: the 12-byte prelude and the 4-byte CRC.
pub const MESSAGE_OVERHEAD_BYTES: usize = 16;
/// Value type of a string header.
const HEADER_TYPE_STRING: u8 = 7;

/// One message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers.iter().map(|(name, value)| 1 + name.len() + 1 + 2 + value.len()).sum();
    let total_len = MESSAGE_OVERHEAD_BYTES + headers_len + payload.len();
    let mut out = BytesMut::with_capacity(total_len);
    out.put_u32(u32::try_from(total_len).expect("an event fits in 4 GiB"));
    out.put_u32(headers_len as u32);
    out.put_u32(crc32fast::hash(&out[..8]));
    for (name, value) in headers {
        // Header names are our constants and values are short: content types and names.
        let name_len = u8::try_from(name.len()).expect("header names are short");
        let value_len = u16::try_from(value.len()).expect("header values are short");
        out.put_u8(name_len);
        out.put_slice(name.as_bytes());
        out.put_u8(HEADER_TYPE_STRING);
        out.put_u16(value_len);
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    debug_assert_eq!(out.len(), total_len);
    out.freeze()
}

/// An event: `:message-type` event.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(&[(":message-type", "event"), (":event-type", event_type), (":content-type", content_type)], payload)
}

/// An error inside the stream: `:message-type` exception.
pub fn exception(exception_type: &str, content_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[(":message-type", "exception"), (":exception-type", exception_type), (":content-type", content_type)],
        payload,
    )
}

/// One message read back by [`decode`]: `(headers, payload, bytes used)`.
#[cfg(test)]
type Decoded = (Vec<(String, String)>, Vec<u8>, usize);

/// Reads one message back, or `None` if it is not a whole, intact message. For tests.
#[cfg(test)]
pub fn decode(bytes: &[u8]) -> Option<Decoded> {
    let word = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize);
    let (total, headers_len, prelude_crc) = (word(0)?, word(4)?, word(8)?);
    if crc32fast::hash(&bytes[..8]) as usize != prelude_crc || bytes.len() < total {
        return None;
    }
    if crc32fast::hash(&bytes[..total - 4]) as usize != word(total - 4)? {
        return None;
    }
    let mut headers = Vec::new();
    let mut at = 12;
    while at < 12 + headers_len {
        let name_len = bytes[at] as usize;
        let name = String::from_utf8(bytes[at + 1..at + 1 + name_len].to_vec()).ok()?;
        at += 1 + name_len;
        assert_eq!(bytes[at], HEADER_TYPE_STRING);
        let value_len = u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        let value = String::from_utf8(bytes[at + 3..at + 3 + value_len].to_vec()).ok()?;
        at += 3 + value_len;
        headers.push((name, value));
    }
    Some((headers, bytes[12 + headers_len..total - 4].to_vec(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_byte_by_byte() {
        let bytes = message(&[("a", "b")], b"{}");
        // 16 bytes of framing + header (1 + 1 + 1 + 2 + 1 = 6) + payload 2 = 24.
        assert_eq!(&bytes[..8], &[0, 0, 0, 24, 0, 0, 0, 6]);
        assert_eq!(&bytes[8..12], &crc32fast::hash(&bytes[..8]).to_be_bytes());
        assert_eq!(&bytes[12..18], &[1, b'a', 7, 0, 1, b'b']);
        assert_eq!(&bytes[18..20], b"{}");
        assert_eq!(&bytes[20..], &crc32fast::hash(&bytes[..20]).to_be_bytes());
    }

    #[test]
    fn the_empty_message_matches_the_spec_vector() {
        // From the smithy event-stream test suite ("empty_message"): no headers, no payload.
        assert_eq!(
            &message(&[], b"")[..],
            &[0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }

    #[test]
    fn events_round_trip() {
        let bytes = event("SubscribeToShardEvent", "application/x-amz-json-1.1", br#"{"Records":[]}"#);
        let (headers, payload, used) = decode(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(payload, br#"{"Records":[]}"#);
        assert_eq!(headers[0], (":message-type".to_string(), "event".to_string()));
        assert_eq!(headers[1], (":event-type".to_string(), "SubscribeToShardEvent".to_string()));
        let mut corrupt = bytes.to_vec();
        corrupt[20] ^= 1;
        assert!(decode(&corrupt).is_none());
    }
}
