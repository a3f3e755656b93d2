//! The `application/vnd.amazon.eventstream` framing: SubscribeToShard's streamed answer over
//! the AWS protocols. One codec for the server (which writes it), the load generator and the
//! tests (which read it); reading checks both CRCs.
//!
//! ```text
//! offset  size  field
//! 0       4     total_len: u32 big-endian, the whole message including both CRCs
//! 4       4     headers_len: u32 big-endian
//! 8       4     prelude_crc: CRC-32 (IEEE, as gzip) of bytes 0..8
//! 12      H     headers: name_len u8, name, value type u8, value
//! 12+H    P     payload
//! 12+H+P  4     message_crc: CRC-32 of bytes 0..12+H+P
//! ```
//!
//! Header value types (botocore `eventstream.py`, smithy's event-stream spec): 0 true, 1
//! false, 2 i8, 3 i16, 4 i32, 5 i64, 6 bytes (u16 length), 7 string (u16 length), 8 timestamp
//! (i64 ms), 9 uuid (16 bytes). Kinesis sends only strings (`:message-type`, `:event-type` or
//! `:exception-type`, `:content-type`); the reader accepts every type and keeps the strings.
//!
//! AWS's Rust crate for this framing (aws-smithy-eventstream) needs a newer compiler than this
//! workspace's minimum and brings the smithy type crates with it, for a hundred lines of
//! framing; the tests below check this codec against the format byte by byte and against the
//! spec's test vector, and the boto3 suite reads it with botocore's own parser.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of framing around headers and payload: the 12-byte prelude and the 4-byte CRC.
pub const MESSAGE_OVERHEAD_BYTES: usize = 16;
/// Largest message a reader accepts: a SubscribeToShardEvent carries at most 2 MiB of records
/// (`SUBSCRIPTION_EVENT_BYTES_MAX` in the server), which base64 and JSON members make under
/// 3 MiB; 16 MiB bounds what a peer can make a reader buffer.
pub const MESSAGE_BYTES_MAX: usize = 16 << 20;
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

/// A message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The string headers, in order; headers of other types are checked and left out.
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

impl Message {
    /// The value of string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
    }
}

/// Why bytes are not an event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event-stream message of {total} bytes with {headers} bytes of headers cannot be")]
    Lengths { total: usize, headers: usize },
    #[error("event-stream message of {0} bytes exceeds the maximum of {MESSAGE_BYTES_MAX}")]
    TooLarge(usize),
    #[error("event-stream prelude CRC mismatch")]
    PreludeCrc,
    #[error("event-stream message CRC mismatch")]
    MessageCrc,
    #[error("event-stream header is malformed: {0}")]
    Header(&'static str),
}

/// Reads the message at the front of `buffer`: `Ok(None)` while it is not all there, else the
/// message and the bytes it took. Never panics, whatever the bytes.
pub fn decode(buffer: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some(prelude) = buffer.get(..12) else { return Ok(None) };
    let word = |at: usize| u32::from_be_bytes([prelude[at], prelude[at + 1], prelude[at + 2], prelude[at + 3]]);
    let (total, headers_len) = (word(0) as usize, word(4) as usize);
    if crc32fast::hash(&prelude[..8]) != word(8) {
        return Err(DecodeError::PreludeCrc);
    }
    if total > MESSAGE_BYTES_MAX {
        return Err(DecodeError::TooLarge(total));
    }
    if total < MESSAGE_OVERHEAD_BYTES || headers_len > total - MESSAGE_OVERHEAD_BYTES {
        return Err(DecodeError::Lengths { total, headers: headers_len });
    }
    let Some(bytes) = buffer.get(..total) else { return Ok(None) };
    let (body, crc) = bytes.split_at(total - 4);
    if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(DecodeError::MessageCrc);
    }
    let headers = headers(&body[12..12 + headers_len])?;
    let payload = Bytes::copy_from_slice(&body[12 + headers_len..]);
    Ok(Some((Message { headers, payload }, total)))
}

fn headers(mut bytes: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    fn take<'a>(bytes: &mut &'a [u8], count: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if bytes.len() < count {
            return Err(DecodeError::Header(what));
        }
        let (taken, rest) = bytes.split_at(count);
        *bytes = rest;
        Ok(taken)
    }
    let mut strings = Vec::new();
    while !bytes.is_empty() {
        let name_len = take(&mut bytes, 1, "name length")?[0] as usize;
        let name = std::str::from_utf8(take(&mut bytes, name_len, "name")?).map_err(|_| DecodeError::Header("name"))?;
        let kind = take(&mut bytes, 1, "value type")?[0];
        let fixed = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let length = take(&mut bytes, 2, "value length")?;
                let value = take(&mut bytes, u16::from_be_bytes([length[0], length[1]]) as usize, "value")?;
                if kind == HEADER_TYPE_STRING {
                    let value = std::str::from_utf8(value).map_err(|_| DecodeError::Header("string value"))?;
                    strings.push((name.to_owned(), value.to_owned()));
                }
                continue;
            }
            _ => return Err(DecodeError::Header("value type")),
        };
        take(&mut bytes, fixed, "value")?;
    }
    Ok(strings)
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
        let vector = [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];
        assert_eq!(&message(&[], b"")[..], &vector);
        let (decoded, used) = decode(&vector).unwrap().unwrap();
        assert_eq!((decoded, used), (Message { headers: Vec::new(), payload: Bytes::new() }, 16));
    }

    #[test]
    fn events_round_trip_whole_or_not_at_all() {
        let bytes = event("SubscribeToShardEvent", "application/x-amz-json-1.1", br#"{"Records":[]}"#);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let (message, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(&message.payload[..], br#"{"Records":[]}"#);
        assert_eq!(message.header(":message-type"), Some("event"));
        assert_eq!(message.header(":event-type"), Some("SubscribeToShardEvent"));
        let mut corrupt = bytes.to_vec();
        corrupt[20] ^= 1;
        assert_eq!(decode(&corrupt), Err(DecodeError::MessageCrc));
        corrupt[2] ^= 1;
        assert_eq!(decode(&corrupt), Err(DecodeError::PreludeCrc));
    }

    #[test]
    fn headers_of_every_type_are_read_and_strings_kept() {
        let mut headers = Vec::new();
        for (kind, value) in
            [(0u8, &[][..]), (1, &[]), (2, &[1]), (3, &[0, 1]), (4, &[0; 4]), (5, &[0; 8]), (8, &[0; 8]), (9, &[0; 16])]
        {
            headers.extend_from_slice(&[1, b'x', kind]);
            headers.extend_from_slice(value);
        }
        headers.extend_from_slice(&[1, b'b', 6, 0, 2, 0xff, 0xfe, 1, b's', 7, 0, 2, b'o', b'k']);
        let total = MESSAGE_OVERHEAD_BYTES + headers.len();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(total as u32).to_be_bytes());
        bytes.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes[..8]).to_be_bytes());
        bytes.extend_from_slice(&headers);
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
        let (message, _) = decode(&bytes).unwrap().unwrap();
        assert_eq!(message.headers, vec![("s".to_owned(), "ok".to_owned())]);
    }

    #[test]
    fn lengths_that_cannot_be_are_refused() {
        let mut prelude = vec![0, 0, 0, 4, 0, 0, 0, 9];
        prelude.extend_from_slice(&crc32fast::hash(&prelude).to_be_bytes());
        assert!(matches!(decode(&prelude), Err(DecodeError::Lengths { .. })));
        let mut huge = vec![0x7f, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&crc32fast::hash(&huge).to_be_bytes());
        assert!(matches!(decode(&huge), Err(DecodeError::TooLarge(_))));
    }
}
