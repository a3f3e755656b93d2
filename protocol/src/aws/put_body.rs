//! The hot operations' bodies (PutRecord, PutRecords in AWS JSON 1.1) read straight into their
//! model inputs, without the [`Value`](super::Value) document and the shape checker's walk.
//!
//! [`decode`] is an *accept-only* fast path: it answers `Some(request)` only for a body that the
//! general path ([`super::decode_request`]: parse, check, type) would also accept, and would
//! read into the very same request; for anything else (an unknown or repeated member, a `null`,
//! a string with escapes, any broken constraint, a member it does not handle such as
//! `StreamARN`) it answers `None` and the caller takes the general path, which finds the
//! exception AWS answers. So errors keep their types and messages by construction, and the
//! differential property test below (and the `aws_body` fuzz target) check that every `Some`
//! equals what the general path reads.
//!
//! What it saves per request: the tree of `Value`s (a `String` per key, a `Vec` per object),
//! the checker's path strings, and a heap buffer per record for its decoded data. A strict
//! scanner ([`Scanner`]: objects, one array, strings without escapes) borrows every string from
//! the body, finding each string's end with `memchr`'s vector search (serde_json's byte-wise
//! scan and UTF-8 check of the base64 were 11% of sluiced with serde); every record's base64 is
//! decoded into one buffer sized up front (with `base64-simd`, which picks the widest vector
//! instructions the CPU offers at run time), and each record's data is a [`Bytes`] slice of it.
//!
//! [`encode_response`] writes their answers the same way: the bytes serde_json would write,
//! without a `String` per sequence number.
//!
//! CBOR bodies (the Java SDKs) still take the general path. Unfinished: a CBOR reader of the
//! same accept-only kind.

use super::document::Encoding;
use bytes::Bytes;
use sluice_model::{
    EncryptionType, HashKey, Operation, PutRecordInput, PutRecordOutput, PutRecordsInput, PutRecordsOutput,
    PutRecordsRequestEntry, Request, Response, SequenceNumber,
};

/// The model's bounds the fast path checks itself (from `kinesis-model.json`; the general path
/// reads them from there): `PutRecordsRequestEntryList` 1..=500 entries, `Data` at most
/// 10 MiB, `PartitionKey` 1..=256 characters, `StreamName` 1..=128 characters.
const RECORDS_PER_CALL_MAX: usize = 500;
const DATA_BYTES_MAX: usize = 10 * 1024 * 1024;
const PARTITION_KEY_CHARS_MAX: usize = 256;
const STREAM_NAME_CHARS_MAX: usize = 128;

/// One PutRecords entry as it lies in the body: the base64 of its data (unchecked bytes until
/// decoded), its partition key, its explicit hash key.
struct EntryBody<'a> {
    data: &'a [u8],
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
}

/// `operation`'s request read from `body` if the fast path can, `None` if the general path
/// must (see the module docs: `None` is never an answer, only a hand-over).
pub fn decode(operation: Operation, encoding: Encoding, body: &[u8]) -> Option<Request> {
    if encoding != Encoding::Json {
        return None;
    }
    match operation {
        Operation::PutRecords => put_records(body).map(Request::PutRecords),
        Operation::PutRecord => put_record(body).map(Request::PutRecord),
        _ => None,
    }
}

/// Sets `slot` once: a member repeated is the general path's to read (the last one counts there).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn put_records(body: &[u8]) -> Option<PutRecordsInput> {
    let mut scanner = Scanner { body, at: 0 };
    let (mut entries, mut stream_name) = (None, None);
    scanner.object(|scanner, key| match key {
        b"Records" => once(&mut entries, scanner.entries()?),
        b"StreamName" => once(&mut stream_name, scanner.text()?),
        // `StreamARN`, `StreamId`, `DryRun`, anything unknown.
        _ => None,
    })?;
    scanner.end()?;
    let entries = entries?;
    if entries.is_empty() || !stream_name.is_none_or(stream_name_ok) {
        return None;
    }
    let mut decoded_bytes = 0usize;
    for entry in &entries {
        decoded_bytes += decoded_length(entry.data)?;
    }
    let mut data = Vec::with_capacity(decoded_bytes);
    let mut ends = Vec::with_capacity(entries.len());
    for entry in &entries {
        decode_base64_into(entry.data, &mut data)?;
        ends.push(data.len());
    }
    let data = Bytes::from(data);
    let mut records = Vec::with_capacity(entries.len());
    let mut start = 0;
    for (entry, end) in entries.iter().zip(ends) {
        records.push(PutRecordsRequestEntry {
            data: data.slice(start..end),
            explicit_hash_key: explicit_hash_key(entry.explicit_hash_key)?,
            partition_key: Some(partition_key(entry.partition_key)?),
        });
        start = end;
    }
    Some(PutRecordsInput { records, stream_name: stream_name.map(str::to_string), stream_arn: None })
}

fn put_record(body: &[u8]) -> Option<PutRecordInput> {
    let mut scanner = Scanner { body, at: 0 };
    let (mut stream_name, mut entry) = (None, EntrySlots::default());
    scanner.object(|scanner, key| match key {
        b"StreamName" => once(&mut stream_name, scanner.text()?),
        // `SequenceNumberForOrdering`, `StreamARN` and the rest go the general way.
        _ => entry.member(scanner, key),
    })?;
    scanner.end()?;
    let entry = entry.entry()?;
    if !stream_name.is_none_or(stream_name_ok) {
        return None;
    }
    let mut data = Vec::with_capacity(decoded_length(entry.data)?);
    decode_base64_into(entry.data, &mut data)?;
    Some(PutRecordInput {
        stream_name: stream_name.map(str::to_string),
        data: Bytes::from(data),
        partition_key: Some(partition_key(entry.partition_key)?),
        explicit_hash_key: explicit_hash_key(entry.explicit_hash_key)?,
        sequence_number_for_ordering: None,
        stream_arn: None,
    })
}

/// The members of an entry (or of PutRecord's body) as they are found.
#[derive(Default)]
struct EntrySlots<'a> {
    data: Option<&'a [u8]>,
    partition_key: Option<&'a str>,
    explicit_hash_key: Option<&'a str>,
}

impl<'a> EntrySlots<'a> {
    fn member(&mut self, scanner: &mut Scanner<'a>, key: &[u8]) -> Option<()> {
        match key {
            b"Data" => once(&mut self.data, scanner.string()?),
            b"PartitionKey" => once(&mut self.partition_key, scanner.text()?),
            b"ExplicitHashKey" => once(&mut self.explicit_hash_key, scanner.text()?),
            _ => None,
        }
    }

    /// The entry, if it has what the fast path needs (a partition key too: without one the
    /// general path reads `None`, which the service then refuses).
    fn entry(self) -> Option<EntryBody<'a>> {
        Some(EntryBody {
            data: self.data?,
            partition_key: self.partition_key?,
            explicit_hash_key: self.explicit_hash_key,
        })
    }
}

/// A strict reader of the JSON the SDKs write for these bodies: objects, one array of objects,
/// and strings without escapes. Whatever else it meets (`null`, numbers, escapes, nesting it
/// does not expect, bytes after the document) it answers `None`, handing the body over. It
/// never recurses beyond the two levels of a PutRecords body.
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// The next byte after JSON whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
        self.body.get(self.at).copied()
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.peek()? == expected).then(|| self.at += 1)
    }

    /// The document's end: nothing but whitespace after it.
    fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }

    /// A string's bytes between its quotes, if it has no escape (found with `memchr`'s vector
    /// search: record data is most of a body). Not yet checked as UTF-8 or for the control
    /// characters JSON forbids: [`Scanner::text`] does that; base64 decoding refuses both.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let rest = &self.body[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A string that is text: valid UTF-8 without raw control characters, as JSON requires.
    fn text(&mut self) -> Option<&'a str> {
        let bytes = self.string()?;
        if bytes.iter().any(|&b| b < 0x20) {
            return None;
        }
        std::str::from_utf8(bytes).ok()
    }

    /// An object, each member's value read by `member` given its key (unescaped bytes).
    fn object(&mut self, mut member: impl FnMut(&mut Scanner<'a>, &'a [u8]) -> Option<()>) -> Option<()> {
        self.byte(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.byte(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// PutRecords' `Records`: an array of at most [`RECORDS_PER_CALL_MAX`] entry objects.
    fn entries(&mut self) -> Option<Vec<EntryBody<'a>>> {
        self.byte(b'[')?;
        let mut entries = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(entries);
        }
        loop {
            if entries.len() == RECORDS_PER_CALL_MAX {
                return None;
            }
            let mut slots = EntrySlots::default();
            self.object(|scanner, key| slots.member(scanner, key))?;
            entries.push(slots.entry()?);
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(entries);
                }
                _ => return None,
            }
        }
    }
}

/// `StreamName`'s constraints: 1..=128 characters of `[a-zA-Z0-9_.-]` (all ASCII, so bytes
/// are characters).
fn stream_name_ok(name: &str) -> bool {
    (1..=STREAM_NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `PartitionKey`'s constraint: 1..=256 characters (Unicode scalar values, as the checker counts).
fn partition_key(key: &str) -> Option<String> {
    // Fewer bytes than the maximum means fewer characters too; only longer keys need counting.
    let ok =
        !key.is_empty() && (key.len() <= PARTITION_KEY_CHARS_MAX || key.chars().count() <= PARTITION_KEY_CHARS_MAX);
    ok.then(|| key.to_string())
}

/// `ExplicitHashKey`: `0|([1-9]\d{0,38})` in ASCII digits and at most 2^128 - 1. Anything else
/// (including digits outside ASCII, which the model's `\d` admits) is the general path's to
/// refuse. `Some(None)` is "absent".
fn explicit_hash_key(text: Option<&str>) -> Option<Option<HashKey>> {
    let Some(text) = text else { return Some(None) };
    let canonical = text == "0" || (!text.starts_with('0') && (1..=39).contains(&text.len()));
    if !canonical || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<HashKey>().ok().map(Some)
}

/// The decoded length of canonical padded base64 `text`, if it can be that (the characters
/// are checked when decoding) and within `Data`'s bound.
fn decoded_length(text: &[u8]) -> Option<usize> {
    let length = base64_simd::STANDARD.decoded_length(text).ok()?;
    (length <= DATA_BYTES_MAX).then_some(length)
}

/// Appends the decoding of `text` (standard alphabet, padding required, unused bits zero: what
/// the general path's `base64` engine accepts) to `out`, whose spare capacity must hold it.
fn decode_base64_into(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let spare = out.spare_capacity_mut();
    let decoded = base64_simd::STANDARD.decode(text, base64_simd::Out::from_uninit_slice(spare)).ok()?.len();
    // SAFETY: `decode` initialised the first `decoded` bytes of the spare capacity (it returns
    // the slice it wrote, which starts at the spare capacity's start).
    unsafe { out.set_len(start + decoded) };
    Some(())
}

/// PutRecords' and PutRecord's answers in JSON, written without serde: the same bytes as
/// `serde_json` writes for them (the property test below holds the two together), without
/// formatting each sequence number through `fmt` into a fresh `String`. `None` for any other
/// answer, and for the rare ones with an entry this writer leaves to serde (a failed record's
/// message, a sequence number above 128 bits, a shard id or stream text that would need
/// escaping).
pub fn encode_response(encoding: Encoding, response: &Response) -> Option<Vec<u8>> {
    if encoding != Encoding::Json {
        return None;
    }
    match response {
        Response::PutRecords(output) => put_records_output(output),
        Response::PutRecord(output) => put_record_output(output),
        _ => None,
    }
}

/// The most a result entry takes: the member names and punctuation (57 bytes), 39 digits of a
/// sequence number, and a shard id of the usual 20 characters, rounded up.
const RESULT_ENTRY_BYTES: usize = 128;

fn put_records_output(output: &PutRecordsOutput) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + output.records.len() * RESULT_ENTRY_BYTES);
    out.push(b'{');
    if let Some(count) = output.failed_record_count {
        out.extend_from_slice(b"\"FailedRecordCount\":");
        out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"Records\":[");
    for (i, entry) in output.records.iter().enumerate() {
        if entry.error_code.is_some() || entry.error_message.is_some() {
            return None;
        }
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut comma = false;
        if let Some(sequence_number) = &entry.sequence_number {
            out.extend_from_slice(b"\"SequenceNumber\":");
            sequence_number_into(sequence_number, &mut out)?;
            comma = true;
        }
        if let Some(shard_id) = &entry.shard_id {
            if comma {
                out.push(b',');
            }
            out.extend_from_slice(b"\"ShardId\":");
            plain_string_into(shard_id.as_str(), &mut out)?;
        }
        out.push(b'}');
    }
    out.push(b']');
    encryption_type_into(output.encryption_type.as_ref(), &mut out);
    out.push(b'}');
    Some(out)
}

fn put_record_output(output: &PutRecordOutput) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(RESULT_ENTRY_BYTES + 32);
    out.extend_from_slice(b"{\"ShardId\":");
    plain_string_into(output.shard_id.as_str(), &mut out)?;
    out.extend_from_slice(b",\"SequenceNumber\":");
    sequence_number_into(&output.sequence_number, &mut out)?;
    encryption_type_into(output.encryption_type.as_ref(), &mut out);
    out.push(b'}');
    Some(out)
}

fn sequence_number_into(sequence_number: &SequenceNumber, out: &mut Vec<u8>) -> Option<()> {
    out.push(b'"');
    out.extend_from_slice(itoa::Buffer::new().format(sequence_number.as_u128()?).as_bytes());
    out.push(b'"');
    Some(())
}

fn encryption_type_into(encryption_type: Option<&EncryptionType>, out: &mut Vec<u8>) {
    if let Some(encryption_type) = encryption_type {
        out.extend_from_slice(b",\"EncryptionType\":\"");
        out.extend_from_slice(encryption_type.as_str().as_bytes());
        out.push(b'"');
    }
}

/// `text` as a JSON string if it needs no escaping (what serde_json would write unchanged).
fn plain_string_into(text: &str, out: &mut Vec<u8>) -> Option<()> {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f) {
        return None;
    }
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::decode_request_general;
    use proptest::prelude::*;

    fn both(operation: Operation, body: &str) -> (Option<Request>, Result<Request, sluice_model::KinesisError>) {
        (
            decode(operation, Encoding::Json, body.as_bytes()),
            decode_request_general(operation, Encoding::Json, body.as_bytes()),
        )
    }

    /// The fast path's answer, which must exist and equal the general path's.
    fn fast(operation: Operation, body: &str) -> Request {
        let (fast, general) = both(operation, body);
        let fast = fast.unwrap_or_else(|| panic!("the fast path handed over {body}"));
        assert_eq!(Ok(&fast), general.as_ref(), "{body}");
        fast
    }

    /// The fast path hands `body` over, and the general path answers it (`Ok` or an error).
    fn handed_over(operation: Operation, body: &str) {
        assert!(both(operation, body).0.is_none(), "the fast path took {body}");
    }

    #[test]
    fn sdk_bodies_take_the_fast_path() {
        let Request::PutRecords(input) = fast(
            Operation::PutRecords,
            r#"{"Records":[{"Data":"aGVsbG8=","PartitionKey":"k1"},{"Data":"","PartitionKey":"k2","ExplicitHashKey":"340282366920938463463374607431768211455"}],"StreamName":"s"}"#,
        ) else {
            unreachable!()
        };
        assert_eq!(input.records[0].data, Bytes::from_static(b"hello"));
        assert_eq!(input.records[1].explicit_hash_key, Some(HashKey::MAX));
        fast(Operation::PutRecord, r#"{"StreamName":"s","Data":"aGk=","PartitionKey":"ü"}"#);
        fast(Operation::PutRecord, " {\"Data\" : \"aGk=\",\r\n\t\"PartitionKey\":\"k\",\"ExplicitHashKey\":\"0\"} ");
        handed_over(Operation::PutRecord, r#"{"StreamName":null,"Data":"aGk=","PartitionKey":"k"}"#);
        handed_over(Operation::PutRecord, r#"{"Data":"aGk=","PartitionKey":"k"} x"#);
        handed_over(Operation::PutRecord, "{\"Data\":\"aGk=\",\"PartitionKey\":\"k\u{1}\"}");
    }

    #[test]
    fn usual_answers_are_written_by_hand() {
        let entry = sluice_model::PutRecordsResultEntry {
            sequence_number: Some(SequenceNumber::new(u128::MAX)),
            shard_id: Some(sluice_model::ShardId::from_number(3)),
            error_code: None,
            error_message: None,
        };
        let response = Response::PutRecords(PutRecordsOutput {
            failed_record_count: Some(0),
            records: vec![entry.clone(), entry],
            encryption_type: Some(EncryptionType::None),
        });
        let written = encode_response(Encoding::Json, &response).expect("written by hand");
        assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&response).unwrap());
        let response = Response::PutRecord(PutRecordOutput {
            shard_id: sluice_model::ShardId::from_number(0),
            sequence_number: SequenceNumber::new(42),
            encryption_type: None,
        });
        assert_eq!(encode_response(Encoding::Json, &response).unwrap(), serde_json::to_vec(&response).unwrap());
    }

    #[test]
    fn anything_unusual_is_handed_to_the_general_path() {
        for body in [
            r#"{"Records":[],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"aGVsbG8","PartitionKey":"k"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"aGVsbG9=","PartitionKey":"k"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"aGVs\nbG8=","PartitionKey":"k"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":""}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"\u0041"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211456"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k","ExplicitHashKey":"01"}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k","Extra":1}],"StreamName":"s"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k"}],"StreamName":"a b"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k"}],"StreamName":"s","StreamName":"t"}"#,
            r#"{"Records":[{"Data":"","PartitionKey":"k"}],"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}"#,
            r#"{"Records":[null],"StreamName":"s"}"#,
            r#"[]"#,
        ] {
            handed_over(Operation::PutRecords, body);
        }
        let long_key = format!(r#"{{"Data":"","PartitionKey":"{}","StreamName":"s"}}"#, "é".repeat(257));
        handed_over(Operation::PutRecord, &long_key);
        fast(Operation::PutRecord, &format!(r#"{{"Data":"","PartitionKey":"{}","StreamName":"s"}}"#, "é".repeat(256)));
        handed_over(Operation::PutRecord, r#"{"Data":"","PartitionKey":"k","SequenceNumberForOrdering":"1"}"#);
        assert!(decode(Operation::PutRecords, Encoding::Cbor, b"\xa0").is_none());
        assert!(decode(Operation::CreateStream, Encoding::Json, b"{}").is_none());
    }

    /// One member value: well-formed ones often, so that the fast path is exercised, and the
    /// odd ones it must hand over.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_.-]{0,5}",
            "[A-Za-z0-9+/]{0,8}(|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)",
            "(0|[1-9][0-9]{0,40})",
            ".{0,4}",
            Just("\\u00e9".to_string()),
        ]
    }

    fn member() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("Data"),
            Just("PartitionKey"),
            Just("ExplicitHashKey"),
            Just("StreamName"),
            Just("StreamARN"),
            Just("Other")
        ];
        let value = prop_oneof![
            4 => text().prop_map(|t| serde_json::to_string(&t).unwrap()),
            1 => Just("null".to_string()),
            1 => Just("5".to_string()),
        ];
        (name, value).prop_map(|(name, value)| format!("{name:?}:{value}"))
    }

    fn result_entry() -> impl Strategy<Value = sluice_model::PutRecordsResultEntry> {
        let sequence_number = prop_oneof![any::<u128>().prop_map(|n| n.to_string()), "[1-9][0-9]{39,60}",];
        (
            proptest::option::of(sequence_number),
            proptest::option::of(prop_oneof![Just("shardId-000000000003".to_string()), ".{0,6}"]),
            proptest::option::of(Just(sluice_model::ErrorKind::ProvisionedThroughputExceeded)),
            proptest::option::of(".{0,6}"),
        )
            .prop_map(|(sequence_number, shard_id, error_code, error_message)| {
                sluice_model::PutRecordsResultEntry {
                    sequence_number: sequence_number.map(|s| s.parse().unwrap()),
                    shard_id: shard_id.map(sluice_model::ShardId::from),
                    error_code,
                    error_message,
                }
            })
    }

    proptest! {
        /// The hand-written answers are serde_json's bytes, whenever it writes one.
        #[test]
        fn answers_are_what_serde_writes(
            entries in proptest::collection::vec(result_entry(), 0..4),
            failed in proptest::option::of(any::<i32>()),
            kms: Option<bool>,
        ) {
            let encryption_type = kms.map(|kms| if kms { EncryptionType::Kms } else { EncryptionType::None });
            let output = PutRecordsOutput { failed_record_count: failed, records: entries.clone(), encryption_type: encryption_type.clone() };
            let response = Response::PutRecords(output);
            if let Some(written) = encode_response(Encoding::Json, &response) {
                prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&response).unwrap());
            }
            if let Some(entry) = entries.first() {
                if let (Some(sequence_number), Some(shard_id)) = (&entry.sequence_number, &entry.shard_id) {
                    let response = Response::PutRecord(PutRecordOutput {
                        shard_id: shard_id.clone(),
                        sequence_number: sequence_number.clone(),
                        encryption_type,
                    });
                    if let Some(written) = encode_response(Encoding::Json, &response) {
                        prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&response).unwrap());
                    }
                }
            }
        }

        /// Well-formed bodies with a few bytes changed, dropped or inserted: each one that the
        /// fast path still takes reads as on the general path.
        #[test]
        fn mutated_bodies_agree(
            records in proptest::collection::vec(("[A-Za-z0-9+/]{0,6}", "[a-zA-Z0-9_é]{0,4}", proptest::option::of("(0|[1-9][0-9]{0,39})")), 1..4),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, proptest::sample::select(b" \t\n\\\"{}[],:0aA=/+\x01\xc3".to_vec())), 0..3),
            single: bool,
        ) {
            use base64::Engine as _;
            let entry = |(data, key, hash): &(String, String, Option<String>)| {
                let data = base64::engine::general_purpose::STANDARD.encode(data);
                let hash = hash.as_ref().map_or(String::new(), |h| format!(",\"ExplicitHashKey\":\"{h}\""));
                format!("\"Data\":\"{data}\",\"PartitionKey\":\"{key}\"{hash}")
            };
            let (operation, body) = if single {
                (Operation::PutRecord, format!("{{\"StreamName\":\"s\",{}}}", entry(&records[0])))
            } else {
                let entries: Vec<String> = records.iter().map(|r| format!("{{{}}}", entry(r))).collect();
                (Operation::PutRecords, format!("{{\"Records\":[{}],\"StreamName\":\"s\"}}", entries.join(",")))
            };
            let mut bytes = body.into_bytes();
            for (at, kind, byte) in edits {
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => { bytes.remove(at); }
                    _ => bytes.insert(at, byte),
                }
            }
            let fast = decode(operation, Encoding::Json, &bytes);
            if let Some(fast) = fast {
                let general = decode_request_general(operation, Encoding::Json, &bytes);
                prop_assert_eq!(Ok(&fast), general.as_ref(), "{:?}", String::from_utf8_lossy(&bytes));
            }
        }

        /// Whatever the fast path takes, the general path takes too and reads the same.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            entries in proptest::collection::vec(proptest::collection::vec(member(), 0..4), 0..4),
            top in proptest::collection::vec(member(), 0..3),
        ) {
            let entries: Vec<String> = entries.iter().map(|members| format!("{{{}}}", members.join(","))).collect();
            let records = format!("\"Records\":[{}]", entries.join(","));
            let mut members = top.clone();
            members.push(records);
            let body = format!("{{{}}}", members.join(","));
            let (fast, general) = both(Operation::PutRecords, &body);
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(&fast), general.as_ref(), "{}", body);
            }
            let single = format!("{{{}}}", entries.first().map_or("", |e| &e[1..e.len() - 1]));
            let (fast, general) = both(Operation::PutRecord, &single);
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(&fast), general.as_ref(), "{}", single);
            }
        }
    }
}
