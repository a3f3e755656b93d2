//! The frame codec: a 4-byte little-endian length, then one verified flatbuffer.
//!
//! This module owns the frame layout, every size and verifier limit of the wire format, and
//! the functions that turn a receive buffer into a verified [`Request`] or [`Response`] and a
//! [`FlatBufferBuilder`] into a frame. It does no I/O and never allocates while decoding:
//! a decoded message borrows the receive buffer, so record payloads are read in place.
//!
//! A frame is exactly a flatbuffers *size-prefixed* buffer (`finish_size_prefixed`): the
//! prefix is the `u32` little-endian length of the bytes after it. Verification therefore
//! runs over the whole frame (`size_prefixed_root_with_opts`), not over the body slice
//! alone, because the builder aligns 8-byte fields relative to the start of the frame: the
//! body starts 4 bytes in, so its 8-byte fields sit at body offsets that are 4 modulo 8 and
//! a verifier run on the body alone would reject them as unaligned. See docs/protocol.md.

use flatbuffers::{Allocator, FlatBufferBuilder, InvalidFlatbuffer, VerifierOptions, WIPOffset};

use crate::body::{RequestBodyTable, ResponseBodyTable};
use crate::wire::{
    Error as WireError, ErrorArgs, ErrorCode, Request, RequestArgs, Response, ResponseArgs, ResponseBody,
};

// ---------------------------------------------------------------------------------------
// Limits. Each one names the Kinesis quota or schema fact behind its value; relations
// between them are checked at compile time below.
// ---------------------------------------------------------------------------------------

/// Bytes of the length prefix: a `u32`, little-endian, counting the bytes after it. This is
/// the flatbuffers size prefix (`flatbuffers::SIZE_SIZEPREFIX`).
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Kinesis quota: a PutRecords request carries at most 500 records.
pub const PUT_RECORDS_RECORD_COUNT_MAX: usize = sluice_model::limits::PUT_RECORDS_COUNT_MAX;

/// Kinesis quota: the data and partition keys of one PutRecords request total at most
/// 10 MiB. The same figure bounds one PutRecord (a record is data + key, at most 10 MiB with
/// `MaxRecordSizeInKiB` = 10240).
pub const PUT_RECORDS_PAYLOAD_BYTES_MAX: usize = sluice_model::limits::PUT_RECORDS_BYTES_MAX;

/// Kinesis quota: GetRecords returns at most 10,000 records.
pub const GET_RECORDS_RECORD_COUNT_MAX: usize = sluice_model::limits::GET_RECORDS_COUNT_MAX;

/// Kinesis quota: GetRecords returns at most 10 MiB. The server counts data *and* partition
/// key bytes against it (as PutRecords does) so that the response fits in one frame; a
/// SubscribeToShardEvent is filled against the same budget.
pub const GET_RECORDS_PAYLOAD_BYTES_MAX: usize = sluice_model::limits::GET_RECORDS_BYTES_MAX;

/// Kinesis: a partition key is 1..=256 Unicode characters, so at most 1024 UTF-8 bytes.
/// AWS counts the key in characters; the frame bound below counts it again in full at 4
/// bytes per character so that a request AWS would accept always fits in a frame.
pub const PARTITION_KEY_BYTES_MAX: usize = sluice_model::limits::PARTITION_KEY_BYTES_MAX;

/// An explicit hash key: the 16-byte `HashKey` struct.
pub const HASH_KEY_BYTES_MAX: usize = 16;

/// A sequence number: the 16-byte `SequenceNumber` struct.
pub const SEQUENCE_NUMBER_BYTES_MAX: usize = 16;
const _: () = assert!(std::mem::size_of::<crate::wire::SequenceNumber>() == SEQUENCE_NUMBER_BYTES_MAX);
const _: () = assert!(std::mem::size_of::<crate::wire::HashKey>() == HASH_KEY_BYTES_MAX);

/// Flatbuffers structure around one record in a PutRecords request or a GetRecords /
/// SubscribeToShardEvent response, beyond its data, partition key, hash key and sequence
/// number bytes: the offset in the records vector, the table and its vtable (which the
/// builder may not share), the length words, the strings' NUL terminators and worst-case
/// alignment padding. Measured: at most 41 bytes per PutRecords entry and 59 per GetRecords
/// record when the builder shares vtables, 16 more when it cannot; the test
/// `record_framing_bound_holds` builds every alignment case and checks this bound.
pub const RECORD_FRAMING_BYTES_MAX: usize = 128;

/// Everything in a message other than its records: the Request/Response tables, stream name
/// (128) and ARN (2048), the next shard iterator (512), child shards and padding. Generous
/// because it is added once per frame.
pub const ENVELOPE_BYTES_MAX: usize = 64 * 1024;

/// The largest PutRecords frame a client may send within the Kinesis quotas.
pub const PUT_RECORDS_FRAME_BYTES_MAX: usize = FRAME_PREFIX_BYTES
    + ENVELOPE_BYTES_MAX
    + PUT_RECORDS_PAYLOAD_BYTES_MAX
    + PUT_RECORDS_RECORD_COUNT_MAX * (PARTITION_KEY_BYTES_MAX + HASH_KEY_BYTES_MAX + RECORD_FRAMING_BYTES_MAX);

/// The largest GetRecords (or SubscribeToShardEvent) frame the server may send within the
/// Kinesis quotas.
pub const GET_RECORDS_FRAME_BYTES_MAX: usize = FRAME_PREFIX_BYTES
    + ENVELOPE_BYTES_MAX
    + GET_RECORDS_PAYLOAD_BYTES_MAX
    + GET_RECORDS_RECORD_COUNT_MAX * (SEQUENCE_NUMBER_BYTES_MAX + RECORD_FRAMING_BYTES_MAX);

/// The largest frame either side accepts, prefix included: 16 MiB, the smallest power of two
/// that holds a maximal PutRecords request ([`PUT_RECORDS_FRAME_BYTES_MAX`], about
/// 10.6 MiB: 500 records, 10 MiB of data and keys, plus framing) and a maximal GetRecords
/// response ([`GET_RECORDS_FRAME_BYTES_MAX`], about 12.5 MiB: 10,000 records, 10 MiB, plus
/// sequence numbers and framing). A receiver rejects a larger length prefix
/// before buffering the body, so one connection can make its peer hold at most this much.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

const _: () = assert!(PUT_RECORDS_FRAME_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(GET_RECORDS_FRAME_BYTES_MAX <= FRAME_BYTES_MAX);
// The prefix is a u32, and the flatbuffers crate addresses buffers with 32-bit offsets.
const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);

/// Verifier limit: nesting depth of tables. The deepest message of the schema is 5 tables
/// (Response → DescribeStreamResponse → StreamDescription → Shard → HashKeyRange); 8 leaves
/// room for the schema to grow while bounding the verifier's recursion.
pub const VERIFIER_DEPTH_MAX: usize = 8;

/// Schema fact: the deepest message nests this many tables (see [`VERIFIER_DEPTH_MAX`]).
const SCHEMA_DEPTH: usize = 5;
const _: () = assert!(SCHEMA_DEPTH <= VERIFIER_DEPTH_MAX);

/// Verifier limit: tables in one request. The largest legal request is a PutRecords with
/// 500 entry tables plus the Request and body tables (502); tag lists are at most 200. The
/// 8x headroom lets a request that is over a Kinesis count limit still decode, so the server
/// can answer it with `Validation` under its correlation id instead of dropping the
/// connection, while capping the verifier's work per frame.
pub const REQUEST_VERIFIER_TABLE_COUNT_MAX: usize = 4096;
const _: () = assert!(PUT_RECORDS_RECORD_COUNT_MAX + 2 <= REQUEST_VERIFIER_TABLE_COUNT_MAX);

/// Schema fact: the largest page of a listing (DescribeStream `Limit`, ListShards
/// `MaxResults`, ListStreams `Limit`, ListStreamConsumers `MaxResults`, GetRecords `Limit`)
/// is 10,000 items in the Kinesis model.
const PAGE_ITEM_COUNT_MAX: usize = sluice_model::limits::PAGE_SIZE_MAX;
const _: () = assert!(sluice_model::limits::GET_RECORDS_COUNT_MAX <= PAGE_ITEM_COUNT_MAX);
/// Schema fact: a Shard is 3 tables (Shard, HashKeyRange, SequenceNumberRange), the largest
/// listed item.
const PAGE_ITEM_TABLE_COUNT_MAX: usize = 3;

/// Verifier limit: tables in one response. The largest legal response is a DescribeStream or
/// ListShards page of 10,000 shards at 3 tables each plus a few envelope tables (30,003).
pub const RESPONSE_VERIFIER_TABLE_COUNT_MAX: usize = 32_768;
const _: () = assert!(PAGE_ITEM_COUNT_MAX * PAGE_ITEM_TABLE_COUNT_MAX + 16 <= RESPONSE_VERIFIER_TABLE_COUNT_MAX);
const _: () = assert!(GET_RECORDS_RECORD_COUNT_MAX + 16 <= RESPONSE_VERIFIER_TABLE_COUNT_MAX);

/// Schema fact: a vtable is 4 bytes plus 2 per field slot; no table has more than 30 slots.
const VTABLE_BYTES_MAX: usize = 4 + 2 * 30;

/// Verifier limit: the "apparent size", the bytes the verifier reads with every shared
/// sub-object counted each time it is reached. An honest frame's apparent size is its own
/// length plus one vtable re-read per table; a hostile frame whose offsets all point at the
/// same object (a DAG) could otherwise make verification cost far more than its length.
/// Twice the largest frame bounds verification to about two linear passes.
pub const VERIFIER_APPARENT_BYTES_MAX: usize = 2 * FRAME_BYTES_MAX;
const _: () =
    assert!(FRAME_BYTES_MAX + RESPONSE_VERIFIER_TABLE_COUNT_MAX * VTABLE_BYTES_MAX <= VERIFIER_APPARENT_BYTES_MAX);

/// Verifier options for frames from a client.
pub const REQUEST_VERIFIER_OPTIONS: VerifierOptions = VerifierOptions {
    max_depth: VERIFIER_DEPTH_MAX,
    max_tables: REQUEST_VERIFIER_TABLE_COUNT_MAX,
    max_apparent_size: VERIFIER_APPARENT_BYTES_MAX,
    // Strings are &str slices of the frame; a missing terminator means a corrupt or
    // hand-made frame, so it is not excused.
    ignore_missing_null_terminator: false,
};

/// Verifier options for frames from the server.
pub const RESPONSE_VERIFIER_OPTIONS: VerifierOptions = VerifierOptions {
    max_depth: VERIFIER_DEPTH_MAX,
    max_tables: RESPONSE_VERIFIER_TABLE_COUNT_MAX,
    max_apparent_size: VERIFIER_APPARENT_BYTES_MAX,
    ignore_missing_null_terminator: false,
};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why bytes are not a frame, or a message does not fit in one.
///
/// Every decoding error is fatal to the connection: after it the receiver no longer knows
/// where the next frame starts (or cannot trust it), and the frame carried no verified
/// correlation id to answer under. The server answers `Serialization` with correlation id 0
/// and closes (docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is zero; the smallest flatbuffer is 4 bytes (its root offset).
    #[error("frame length prefix is zero")]
    BodyEmpty,
    /// The frame (prefix included) is longer than [`FRAME_BYTES_MAX`]: either a received
    /// length prefix claims so, or an encoded message came out that large.
    #[error("frame of {frame_bytes} bytes exceeds the maximum of {frame_bytes_max} bytes")]
    TooLarge { frame_bytes: u64, frame_bytes_max: usize },
    /// The body is not a flatbuffer of the expected root type within the verifier limits.
    #[error("frame body is not a valid {root_type}: {source}")]
    Invalid {
        root_type: &'static str,
        #[source]
        source: InvalidFlatbuffer,
    },
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// The length of the frame at the start of `buf`, prefix included, once its prefix has
/// arrived: `Ok(None)` while fewer than [`FRAME_PREFIX_BYTES`] bytes are buffered.
///
/// The length is checked against [`FRAME_BYTES_MAX`] before it is returned, so a caller may
/// reserve that much receive buffer without trusting the peer further.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<FRAME_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let body_bytes = u32::from_le_bytes(*prefix);
    if body_bytes == 0 {
        return Err(FrameError::BodyEmpty);
    }
    // Computed in u64 so a prefix near u32::MAX cannot overflow a 32-bit usize.
    let frame_bytes = u64::from(body_bytes) + FRAME_PREFIX_BYTES as u64;
    if frame_bytes > FRAME_BYTES_MAX as u64 {
        return Err(FrameError::TooLarge { frame_bytes, frame_bytes_max: FRAME_BYTES_MAX });
    }
    // Lossless: frame_bytes <= FRAME_BYTES_MAX, which is a usize.
    Ok(Some(frame_bytes as usize))
}

/// Decodes the request frame at the start of a receive buffer.
///
/// Returns `Ok(None)` while the frame is incomplete, or `Ok(Some((frame_len, request)))`
/// where `frame_len` is the number of bytes to consume from `buf` (prefix included) and
/// `request` borrows `buf`. Bytes after the frame are left alone: they are the next frame.
pub fn decode_request(buf: &[u8]) -> Result<Option<(usize, Request<'_>)>, FrameError> {
    decode::<Request>(buf, &REQUEST_VERIFIER_OPTIONS, "Request")
}

/// Decodes the response frame at the start of a receive buffer; see [`decode_request`].
pub fn decode_response(buf: &[u8]) -> Result<Option<(usize, Response<'_>)>, FrameError> {
    decode::<Response>(buf, &RESPONSE_VERIFIER_OPTIONS, "Response")
}

fn decode<'buf, T>(
    buf: &'buf [u8],
    options: &VerifierOptions,
    root_type: &'static str,
) -> Result<Option<(usize, T::Inner)>, FrameError>
where
    T: 'buf + flatbuffers::Follow<'buf> + flatbuffers::Verifiable,
{
    let Some(frame_bytes) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..frame_bytes) else {
        return Ok(None);
    };
    let message = flatbuffers::size_prefixed_root_with_opts::<T>(options, frame)
        .map_err(|source| FrameError::Invalid { root_type, source })?;
    Ok(Some((frame_bytes, message)))
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Finishes `fbb` as a request frame around `body`, a request table already built in `fbb`,
/// and returns the frame, ready to write to the socket.
///
/// Call `fbb.reset()` before building the next message. Fails if the frame exceeds
/// [`FRAME_BYTES_MAX`] (the peer would reject it).
pub fn encode_request<'fbb, 'bldr, A, T>(
    fbb: &'fbb mut FlatBufferBuilder<'bldr, A>,
    correlation_id: u64,
    body: WIPOffset<T>,
) -> Result<&'fbb [u8], FrameError>
where
    A: Allocator + 'bldr,
    T: RequestBodyTable,
{
    let request = Request::create(
        fbb,
        &RequestArgs { correlation_id, body_type: T::BODY_TYPE, body: Some(body.as_union_value()) },
    );
    fbb.finish_size_prefixed(request, None);
    checked_frame(fbb.finished_data())
}

/// Finishes `fbb` as a successful response frame around `body`, a response table already
/// built in `fbb`; see [`encode_request`].
pub fn encode_response<'fbb, 'bldr, A, T>(
    fbb: &'fbb mut FlatBufferBuilder<'bldr, A>,
    correlation_id: u64,
    body: WIPOffset<T>,
) -> Result<&'fbb [u8], FrameError>
where
    A: Allocator + 'bldr,
    T: ResponseBodyTable,
{
    let response = Response::create(
        fbb,
        &ResponseArgs { correlation_id, body_type: T::BODY_TYPE, body: Some(body.as_union_value()), error: None },
    );
    fbb.finish_size_prefixed(response, None);
    checked_frame(fbb.finished_data())
}

/// Builds and finishes an error response frame in `fbb`, which must hold no unfinished
/// message (a fresh or reset builder).
pub fn encode_error_response<'fbb, 'bldr, A>(
    fbb: &'fbb mut FlatBufferBuilder<'bldr, A>,
    correlation_id: u64,
    code: ErrorCode,
    message: &str,
) -> Result<&'fbb [u8], FrameError>
where
    A: Allocator + 'bldr,
{
    let message = fbb.create_string(message);
    let error = WireError::create(fbb, &ErrorArgs { code, message: Some(message) });
    let response = Response::create(
        fbb,
        &ResponseArgs { correlation_id, body_type: ResponseBody::NONE, body: None, error: Some(error) },
    );
    fbb.finish_size_prefixed(response, None);
    checked_frame(fbb.finished_data())
}

/// Writes a `[ubyte]` vector (a record's `data`) into `fbb` with one `memcpy`.
///
/// `FlatBufferBuilder::create_vector` pushes bytes one element at a time, which the optimizer
/// may or may not turn into a copy and which is slow in debug builds; for 10 MiB of payload
/// that matters. This writes the same length-prefixed vector through `create_byte_string`,
/// which copies the slice whole and adds one NUL byte after the vector's end, outside its
/// length, that readers never see.
pub fn create_bytes<'bldr, A>(
    fbb: &mut FlatBufferBuilder<'bldr, A>,
    data: &[u8],
) -> WIPOffset<flatbuffers::Vector<'bldr, u8>>
where
    A: Allocator + 'bldr,
{
    WIPOffset::new(fbb.create_byte_string(data).value())
}

fn checked_frame(frame: &[u8]) -> Result<&[u8], FrameError> {
    if frame.len() > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { frame_bytes: frame.len() as u64, frame_bytes_max: FRAME_BYTES_MAX });
    }
    // The frame layout is the flatbuffers size prefix; this catches a crate upgrade that
    // changed it, which would silently break every peer.
    assert_eq!(frame_len(frame), Ok(Some(frame.len())), "a size-prefixed flatbuffer must be exactly one frame");
    Ok(frame)
}

#[cfg(test)]
mod tests;
