//! The byte layout of journal segments, and the pure functions that write and check it.
//!
//! Nothing here does I/O, so everything here is tested exhaustively and fuzzed. The layout is
//! specified in `docs/format.md`; the offset constants below mirror that document.
//!
//! A segment is a sequence of *commits* (one per group commit), each one or more *batches*
//! written concurrently and made durable by one fdatasync. Every batch starts on a
//! [`BLOCK_BYTES`] boundary and is zero-padded to the next one:
//!
//! ```text
//! commit = batch(START) batch* batch(END)    -- or one batch flagged START|END
//! batch  = batch header (64 B) | run* | zero padding
//! run    = run header (32 B, or 48 B with a Raft position) | record*   -- one shard's, in order
//! record = record header (16 B) | partition key | data
//! ```
//!
//! All integers are little-endian. A batch is never rewritten once acknowledged, so an
//! acknowledged byte is never at risk from a later write. A commit is written only after the
//! previous one is durable: that is what lets recovery tell a torn tail from corruption.

use crate::checksum::{xxh3_64, xxh3_64_with_seed, Xxh3Stream};
use crate::shard_index::RunEntry;

/// Batches start on multiples of this. It is the smallest O_DIRECT alignment Linux devices
/// use; a device with larger sectors pads to its own alignment, always a multiple of this.
pub const BLOCK_BYTES: usize = 512;

/// "SLB1" read as a little-endian u32.
pub const BATCH_MAGIC: u32 = u32::from_le_bytes(*b"SLB1");
/// The newest batch format this engine reads and writes. Version 2 checksums the run and
/// record headers in the batch header instead of the whole body (each record's own checksum
/// covers its bytes), so every byte of data is hashed once, not twice. Version 3 is version 2
/// whose runs may carry a Raft position ([`RUN_RAFT`]): a batch is written as version 3 only
/// when one of its runs does (a replicated shard's), so a single node writes version 2 as
/// before; a build that predates Raft positions never misreads such a batch, but does not
/// read it either (`docs/format.md` says what it does instead).
pub const FORMAT_VERSION: u16 = 3;
/// The version of a batch none of whose runs carries a Raft position.
pub const FORMAT_VERSION_WITHOUT_RAFT: u16 = 2;
/// The oldest batch format this engine still reads: version 1 checksummed the whole body.
pub const FORMAT_VERSION_MIN: u16 = 1;

/// Batch flag: the first batch of a commit.
pub const COMMIT_START: u16 = 1;
/// Batch flag: the last batch of a commit.
pub const COMMIT_END: u16 = 2;

pub const BATCH_HEADER_BYTES: usize = 64;
pub mod batch_offset {
    pub const MAGIC: usize = 0; // u32
    pub const VERSION: usize = 4; // u16
    pub const FLAGS: usize = 6; // u16, COMMIT_START | COMMIT_END
    pub const POSITION: usize = 8; // u64, journal position of this header
    pub const BODY_BYTES: usize = 16; // u32, runs only
    pub const PADDED_BYTES: usize = 20; // u32, header + body + padding
    pub const RECORD_COUNT: usize = 24; // u32
    pub const RUN_COUNT: usize = 28; // u32
    pub const TIMESTAMP_MS: usize = 32; // i64, commit time
    pub const HEADERS_XXH3: usize = 40; // u64, xxh3 of the run and record headers (v1: of the body)
    pub const RESERVED: usize = 48; // u64, zero
    pub const HEADER_XXH3: usize = 56; // u64, xxh3 of bytes 0..56
}

pub const RUN_HEADER_BYTES: usize = 32;
/// A run header with a Raft position ([`RUN_RAFT`] set): the 32 bytes, then the term and the
/// index of the Raft entry the run's records came from.
pub const RUN_RAFT_HEADER_BYTES: usize = 48;
pub mod run_offset {
    pub const SHARD_UID: usize = 0; // u64
    pub const FIRST_INDEX: usize = 8; // u64, record index of the first record
    pub const RECORD_COUNT: usize = 16; // u32, with RUN_RAFT in its top bit
    pub const RUN_BYTES: usize = 20; // u32, header + records
    pub const TIMESTAMP_MS: usize = 24; // i64, arrival time of every record of the run
    pub const RAFT_TERM: usize = 32; // u64, RUN_RAFT only: the term of the run's Raft entry
    pub const RAFT_INDEX: usize = 40; // u64, RUN_RAFT only: the index of the entry, at least 1
}
/// The record count's top bit: the run header is [`RUN_RAFT_HEADER_BYTES`] long and carries
/// a Raft position. The run says so itself, not its batch, because a read decodes a run alone
/// from the position the index gives (`journal/read.rs`), and a sealed segment's checkpoint
/// lists runs without their batches. A run holds far fewer than 2^31 records, so the bit was
/// always zero before.
///
/// A run with this bit may hold no records at all: a *position-only run*, which says only that
/// the shard's Raft log holds the entry at its position there (an entry without records: a new
/// leader's first, a seal, a membership change; `docs/replication.md`), so that the journal
/// orders every entry of the log, and a replacement of one, by its write order. A run without
/// the bit always holds records.
pub const RUN_RAFT: u32 = 1 << 31;

/// Where a run's records sit in its shard's Raft log (a replicated shard's runs only): the
/// term and index of the entry they were applied from. One entry's records may span several
/// runs (one per batch of a commit); they all carry its position. By Raft's log matching
/// property the two name one entry in every member's log, which is also how the group host
/// tells a proposal's entry (`sluice_cluster::host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RaftPosition {
    pub term: u64,
    /// At least 1: Raft's first entry is index 1.
    pub index: u64,
}

impl RaftPosition {
    /// The bytes of the header of a run with this position, or without one.
    pub fn run_header_bytes(raft: Option<RaftPosition>) -> usize {
        if raft.is_some() {
            RUN_RAFT_HEADER_BYTES
        } else {
            RUN_HEADER_BYTES
        }
    }
}

pub const RECORD_HEADER_BYTES: usize = 16;
pub mod record_offset {
    pub const XXH3: usize = 0; // u64, xxh3 of bytes 8.. seeded with (shard, index)
    pub const FRAME_BYTES: usize = 8; // u32, header + key + data
    pub const KEY_BYTES: usize = 12; // u16
    pub const FLAGS: usize = 14; // u16, RECORD_SEALED or zero
}

const _: () = assert!(BATCH_HEADER_BYTES <= BLOCK_BYTES);
const _: () = assert!(batch_offset::HEADER_XXH3 + 8 == BATCH_HEADER_BYTES);
const _: () = assert!(run_offset::TIMESTAMP_MS + 8 == RUN_HEADER_BYTES);
const _: () = assert!(run_offset::RAFT_INDEX + 8 == RUN_RAFT_HEADER_BYTES);
const _: () = assert!(record_offset::FLAGS + 2 == RECORD_HEADER_BYTES);

/// Record flag: the record's data is sealed (encrypted) by the journal's caller. The engine
/// stores the bit and hands it back with the record; it never interprets the data.
pub const RECORD_SEALED: u16 = 1;
/// Every record flag this build knows; a record with another bit set is refused as corrupt.
pub const RECORD_FLAGS_KNOWN: u16 = RECORD_SEALED;

pub fn align_up(value: usize, alignment: usize) -> usize {
    debug_assert!(alignment.is_power_of_two());
    (value + alignment - 1) & !(alignment - 1)
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(bytes[offset..offset + 2].try_into().unwrap())
}
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}
fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}
fn i64_at(bytes: &[u8], offset: usize) -> i64 {
    i64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}
fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}

/// Seeds a record's checksum with its shard and index, so that a record read back from the
/// wrong place fails its check instead of passing as another record.
fn record_seed(shard_uid: u64, record_index: u64) -> u64 {
    shard_uid.rotate_left(32) ^ record_index ^ 0x5eed_5eed_5eed_5eed
}

pub fn record_bytes(key_len: usize, data_len: usize) -> usize {
    RECORD_HEADER_BYTES + key_len + data_len
}

/// Frames one batch into a buffer it owns: runs of records, then [`BatchWriter::finish`]
/// writes the padding and header. The buffer's length is the batch's capacity.
///
/// Each record is copied once, from the caller's bytes into the buffer, and hashed once, for
/// its own checksum; the batch's checksum covers only the headers (format version 2).
pub struct BatchWriter<B> {
    buffer: B,
    /// XXH3-64 of the headers so far: each record header as its record is written, each run
    /// header once its run is complete.
    headers: Xxh3Stream,
    cursor: usize,
    run_start: Option<usize>,
    /// The open run's header length: [`RUN_HEADER_BYTES`], or [`RUN_RAFT_HEADER_BYTES`].
    run_header_bytes: usize,
    run_records: u32,
    record_count: u32,
    run_count: u32,
    shard_uid: u64,
    next_index: u64,
    /// Some run carries a Raft position: the batch is [`FORMAT_VERSION`] 3.
    raft_runs: bool,
}

impl<B: AsMut<[u8]>> BatchWriter<B> {
    pub fn new(mut buffer: B) -> BatchWriter<B> {
        let capacity = buffer.as_mut().len();
        assert!(capacity >= BLOCK_BYTES && capacity % BLOCK_BYTES == 0, "batch capacity {capacity}");
        BatchWriter {
            buffer,
            headers: Xxh3Stream::new(),
            cursor: BATCH_HEADER_BYTES,
            run_start: None,
            run_header_bytes: RUN_HEADER_BYTES,
            run_records: 0,
            record_count: 0,
            run_count: 0,
            shard_uid: 0,
            next_index: 0,
            raft_runs: false,
        }
    }

    /// Bytes written so far: the offset in the batch where the next run or record goes.
    pub fn offset(&mut self) -> usize {
        self.cursor
    }

    /// Whether a record fits, after a new run's header of `run_header_bytes` (0: in the open
    /// run; else [`RaftPosition::run_header_bytes`]).
    pub fn fits(&mut self, key_len: usize, data_len: usize, run_header_bytes: usize) -> bool {
        self.cursor + run_header_bytes + record_bytes(key_len, data_len) <= self.buffer.as_mut().len()
    }

    pub fn is_empty(&self) -> bool {
        self.run_count == 0 && self.run_start.is_none()
    }

    /// Opens a run of `shard_uid`'s records from `first_index` on, which arrived at
    /// `timestamp_ms`; with `raft`, the run header carries the Raft entry they came from.
    pub fn begin_run(&mut self, shard_uid: u64, first_index: u64, timestamp_ms: i64, raft: Option<RaftPosition>) {
        self.end_run();
        let at = self.cursor;
        let buffer = self.buffer.as_mut();
        put(buffer, at + run_offset::SHARD_UID, &shard_uid.to_le_bytes());
        put(buffer, at + run_offset::FIRST_INDEX, &first_index.to_le_bytes());
        put(buffer, at + run_offset::TIMESTAMP_MS, &timestamp_ms.to_le_bytes());
        if let Some(raft) = raft {
            assert!(raft.index > 0, "Raft indexes start at 1");
            put(buffer, at + run_offset::RAFT_TERM, &raft.term.to_le_bytes());
            put(buffer, at + run_offset::RAFT_INDEX, &raft.index.to_le_bytes());
            self.raft_runs = true;
        }
        self.run_start = Some(at);
        self.run_header_bytes = RaftPosition::run_header_bytes(raft);
        self.run_records = 0;
        self.shard_uid = shard_uid;
        self.next_index = first_index;
        self.cursor += self.run_header_bytes;
    }

    /// Whether a position-only run fits ([`BatchWriter::push_position`]).
    pub fn fits_position(&mut self) -> bool {
        self.cursor + RUN_RAFT_HEADER_BYTES <= self.buffer.as_mut().len()
    }

    /// Writes a position-only run ([`RUN_RAFT`]): the Raft entry at `raft` holds no records,
    /// and sits in `shard_uid`'s log before record index `first_index`.
    pub fn push_position(&mut self, shard_uid: u64, first_index: u64, timestamp_ms: i64, raft: RaftPosition) {
        self.begin_run(shard_uid, first_index, timestamp_ms, Some(raft));
        self.end_run();
    }

    /// Appends one record to the open run: the one copy from the request into the I/O buffer.
    /// `flags` is [`RECORD_SEALED`] or 0.
    pub fn push_record(&mut self, key: &[u8], data: &[u8], flags: u16) {
        assert!(self.run_start.is_some(), "push_record outside a run");
        let frame_bytes = record_bytes(key.len(), data.len());
        let frame = &mut self.buffer.as_mut()[self.cursor..self.cursor + frame_bytes];
        put(frame, record_offset::FRAME_BYTES, &(frame_bytes as u32).to_le_bytes());
        put(frame, record_offset::KEY_BYTES, &(key.len() as u16).to_le_bytes());
        put(frame, record_offset::FLAGS, &flags.to_le_bytes());
        put(frame, RECORD_HEADER_BYTES, key);
        put(frame, RECORD_HEADER_BYTES + key.len(), data);
        let seed = record_seed(self.shard_uid, self.next_index);
        let checksum = xxh3_64_with_seed(&frame[record_offset::FRAME_BYTES..], seed);
        put(frame, record_offset::XXH3, &checksum.to_le_bytes());
        self.headers.update(&frame[..RECORD_HEADER_BYTES]);
        self.cursor += frame_bytes;
        self.next_index += 1;
        self.run_records += 1;
        self.record_count += 1;
    }

    fn end_run(&mut self) {
        if let Some(start) = self.run_start.take() {
            let run_bytes = (self.cursor - start) as u32;
            let buffer = self.buffer.as_mut();
            assert!(self.run_records < RUN_RAFT, "a run of {} records", self.run_records);
            let count_word = if self.run_header_bytes == RUN_RAFT_HEADER_BYTES {
                self.run_records | RUN_RAFT
            } else {
                self.run_records
            };
            put(buffer, start + run_offset::RECORD_COUNT, &count_word.to_le_bytes());
            put(buffer, start + run_offset::RUN_BYTES, &run_bytes.to_le_bytes());
            self.headers.update(&buffer[start..start + self.run_header_bytes]);
            self.run_count += 1;
        }
    }

    /// Seals the batch: zero padding up to `alignment` (a multiple of [`BLOCK_BYTES`]), the
    /// headers' checksum, the batch header. Returns the buffer and the padded length to write.
    pub fn finish(mut self, position: u64, timestamp_ms: i64, flags: u16, alignment: usize) -> (B, usize) {
        assert!(alignment.is_multiple_of(BLOCK_BYTES) && alignment.is_power_of_two());
        self.end_run();
        let used = self.cursor;
        let body_bytes = used - BATCH_HEADER_BYTES;
        let padded_bytes = align_up(used, alignment);
        let buffer = self.buffer.as_mut();
        assert!(padded_bytes <= buffer.len(), "capacity {} is not a multiple of the alignment", buffer.len());
        buffer[used..padded_bytes].fill(0);
        let headers_xxh3 = self.headers.digest();
        let header = &mut buffer[..BATCH_HEADER_BYTES];
        put(header, batch_offset::MAGIC, &BATCH_MAGIC.to_le_bytes());
        let version = if self.raft_runs { FORMAT_VERSION } else { FORMAT_VERSION_WITHOUT_RAFT };
        put(header, batch_offset::VERSION, &version.to_le_bytes());
        put(header, batch_offset::FLAGS, &flags.to_le_bytes());
        put(header, batch_offset::POSITION, &position.to_le_bytes());
        put(header, batch_offset::BODY_BYTES, &(body_bytes as u32).to_le_bytes());
        put(header, batch_offset::PADDED_BYTES, &(padded_bytes as u32).to_le_bytes());
        put(header, batch_offset::RECORD_COUNT, &self.record_count.to_le_bytes());
        put(header, batch_offset::RUN_COUNT, &self.run_count.to_le_bytes());
        put(header, batch_offset::TIMESTAMP_MS, &timestamp_ms.to_le_bytes());
        put(header, batch_offset::HEADERS_XXH3, &headers_xxh3.to_le_bytes());
        put(header, batch_offset::RESERVED, &0u64.to_le_bytes());
        let header_xxh3 = xxh3_64(&header[..batch_offset::HEADER_XXH3]);
        put(header, batch_offset::HEADER_XXH3, &header_xxh3.to_le_bytes());
        (self.buffer, padded_bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub version: u16,
    pub flags: u16,
    pub position: u64,
    pub body_bytes: u32,
    pub padded_bytes: u32,
    pub record_count: u32,
    pub run_count: u32,
    pub timestamp_ms: i64,
    /// Version 2: XXH3-64 of the run and record headers; version 1: of the whole body.
    pub headers_xxh3: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("record {record_index} has unknown flags {flags:#x}")]
    RecordFlags { record_index: u64, flags: u16 },
    #[error("batch header is all zeros")]
    Zeroed,
    #[error("bytes end inside the frame")]
    Truncated,
    #[error("bad magic")]
    Magic,
    #[error("unsupported format version {0}")]
    Version(u16),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("batch claims position {actual}, found at {expected}")]
    Position { expected: u64, actual: u64 },
    #[error("inconsistent lengths")]
    Lengths,
    #[error("batch flags {0:#x} break the commit sequence")]
    CommitSequence(u16),
    #[error("batch checksum mismatch (of the body in version 1, of the run and record headers in version 2)")]
    BodyChecksum,
    #[error("run header does not match the index: expected shard {expected_shard} index {expected_index}")]
    RunMismatch { expected_shard: u64, expected_index: u64 },
    #[error("record checksum mismatch at record index {record_index}")]
    RecordChecksum { record_index: u64 },
    #[error("a run carries a Raft position in a batch of format version {0}, which has none")]
    RaftRunInVersion(u16),
    #[error("a run's Raft position has index 0")]
    RaftIndexZero,
}

/// Reads and checks a batch header found at journal position `position`.
pub fn decode_batch_header(bytes: &[u8], position: u64) -> Result<BatchHeader, FrameError> {
    let header = bytes.get(..BATCH_HEADER_BYTES).ok_or(FrameError::Truncated)?;
    if header.iter().all(|&b| b == 0) {
        return Err(FrameError::Zeroed);
    }
    if u32_at(header, batch_offset::MAGIC) != BATCH_MAGIC {
        return Err(FrameError::Magic);
    }
    if xxh3_64(&header[..batch_offset::HEADER_XXH3]) != u64_at(header, batch_offset::HEADER_XXH3) {
        return Err(FrameError::HeaderChecksum);
    }
    let version = u16_at(header, batch_offset::VERSION);
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
        return Err(FrameError::Version(version));
    }
    let decoded = BatchHeader {
        version,
        flags: u16_at(header, batch_offset::FLAGS),
        position: u64_at(header, batch_offset::POSITION),
        body_bytes: u32_at(header, batch_offset::BODY_BYTES),
        padded_bytes: u32_at(header, batch_offset::PADDED_BYTES),
        record_count: u32_at(header, batch_offset::RECORD_COUNT),
        run_count: u32_at(header, batch_offset::RUN_COUNT),
        timestamp_ms: i64_at(header, batch_offset::TIMESTAMP_MS),
        headers_xxh3: u64_at(header, batch_offset::HEADERS_XXH3),
    };
    if decoded.position != position {
        return Err(FrameError::Position { expected: position, actual: decoded.position });
    }
    let used = BATCH_HEADER_BYTES as u64 + u64::from(decoded.body_bytes);
    let padded = u64::from(decoded.padded_bytes);
    if padded < used || padded % BLOCK_BYTES as u64 != 0 {
        return Err(FrameError::Lengths);
    }
    Ok(decoded)
}

/// One shard's run inside a batch, as found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunView<'a> {
    pub shard_uid: u64,
    pub first_index: u64,
    /// Without the [`RUN_RAFT`] bit.
    pub record_count: u32,
    pub timestamp_ms: i64,
    /// The Raft entry the records came from, if the run says ([`RUN_RAFT`]).
    pub raft: Option<RaftPosition>,
    /// Offset of the run header from the start of the batch.
    pub offset_in_batch: usize,
    /// The whole run: header and records.
    pub bytes: &'a [u8],
}

/// Checks a whole batch (header, checksums, run structure) and returns its runs. In format
/// version 2 that includes every record's checksum (the batch's own covers only the headers);
/// in version 1 the body checksum covers the records, whose own checksums are left to
/// [`RunView::records`]. `bytes` starts at the batch header; it may extend past the batch.
pub fn decode_batch(bytes: &[u8], position: u64) -> Result<(BatchHeader, Vec<RunView<'_>>), FrameError> {
    let header = decode_batch_header(bytes, position)?;
    let body_end = BATCH_HEADER_BYTES + header.body_bytes as usize;
    let body = bytes.get(BATCH_HEADER_BYTES..body_end).ok_or(FrameError::Truncated)?;
    if header.version == 1 && xxh3_64(body) != header.headers_xxh3 {
        return Err(FrameError::BodyChecksum);
    }
    let mut runs = Vec::with_capacity(header.run_count.min(4096) as usize);
    let mut offset = BATCH_HEADER_BYTES;
    let mut record_total = 0u64;
    while offset < body_end {
        let run = decode_run(&bytes[offset..body_end], offset)?;
        record_total += u64::from(run.record_count);
        offset += run.bytes.len();
        runs.push(run);
    }
    if runs.len() != header.run_count as usize || record_total != u64::from(header.record_count) {
        return Err(FrameError::Lengths);
    }
    if header.version < FORMAT_VERSION && runs.iter().any(|run| run.raft.is_some()) {
        return Err(FrameError::RaftRunInVersion(header.version));
    }
    if header.version >= 2 {
        let mut headers = Xxh3Stream::new();
        for run in &runs {
            for record in run.records() {
                let record = record?;
                headers.update(&run.bytes[record.offset_in_run..record.offset_in_run + RECORD_HEADER_BYTES]);
            }
            headers.update(&run.bytes[..run.header_bytes()]);
        }
        if headers.digest() != header.headers_xxh3 {
            return Err(FrameError::BodyChecksum);
        }
    }
    Ok((header, runs))
}

/// Reads a run header at the start of `bytes` (which may extend past the run): of either
/// length, as the header says ([`RUN_RAFT`]).
pub fn decode_run(bytes: &[u8], offset_in_batch: usize) -> Result<RunView<'_>, FrameError> {
    let header = bytes.get(..RUN_HEADER_BYTES).ok_or(FrameError::Truncated)?;
    let count_word = u32_at(header, run_offset::RECORD_COUNT);
    let raft = if count_word & RUN_RAFT != 0 {
        let header = bytes.get(..RUN_RAFT_HEADER_BYTES).ok_or(FrameError::Truncated)?;
        let index = u64_at(header, run_offset::RAFT_INDEX);
        if index == 0 {
            return Err(FrameError::RaftIndexZero);
        }
        Some(RaftPosition { term: u64_at(header, run_offset::RAFT_TERM), index })
    } else {
        None
    };
    let run_bytes = u32_at(header, run_offset::RUN_BYTES) as usize;
    // Only a run with a Raft position may hold no records (a position-only run).
    if run_bytes < RaftPosition::run_header_bytes(raft) || (count_word == 0 && raft.is_none()) {
        return Err(FrameError::Lengths);
    }
    Ok(RunView {
        shard_uid: u64_at(header, run_offset::SHARD_UID),
        first_index: u64_at(header, run_offset::FIRST_INDEX),
        record_count: count_word & !RUN_RAFT,
        timestamp_ms: i64_at(header, run_offset::TIMESTAMP_MS),
        raft,
        offset_in_batch,
        bytes: bytes.get(..run_bytes).ok_or(FrameError::Truncated)?,
    })
}

/// One record as found on disk, its checksum verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub record_index: u64,
    pub key: &'a [u8],
    pub data: &'a [u8],
    /// The record's flags ([`RECORD_SEALED`] or 0), covered by its checksum.
    pub flags: u16,
    /// Offset of the record frame from the start of its run.
    pub offset_in_run: usize,
}

impl<'a> RunView<'a> {
    /// The run header's length: [`RUN_HEADER_BYTES`], or [`RUN_RAFT_HEADER_BYTES`].
    pub fn header_bytes(&self) -> usize {
        RaftPosition::run_header_bytes(self.raft)
    }

    /// The run's records, each checked against its checksum. Stops at the first error.
    pub fn records(&self) -> impl Iterator<Item = Result<RecordView<'a>, FrameError>> + 'a {
        let (bytes, shard_uid, first_index, count) =
            (self.bytes, self.shard_uid, self.first_index, u64::from(self.record_count));
        let mut offset = self.header_bytes();
        let mut ordinal = 0u64;
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || ordinal == count {
                if !failed && ordinal == count && offset != bytes.len() {
                    failed = true;
                    return Some(Err(FrameError::Lengths));
                }
                return None;
            }
            let record_index = first_index + ordinal;
            let result = decode_record(&bytes[offset..], shard_uid, record_index, offset);
            match result {
                Ok(record) => {
                    offset += record_bytes(record.key.len(), record.data.len());
                    ordinal += 1;
                    Some(Ok(record))
                }
                Err(error) => {
                    failed = true;
                    Some(Err(error))
                }
            }
        })
    }
}

fn decode_record(
    bytes: &[u8],
    shard_uid: u64,
    record_index: u64,
    offset_in_run: usize,
) -> Result<RecordView<'_>, FrameError> {
    let header = bytes.get(..RECORD_HEADER_BYTES).ok_or(FrameError::Truncated)?;
    let frame_bytes = u32_at(header, record_offset::FRAME_BYTES) as usize;
    let key_bytes = usize::from(u16_at(header, record_offset::KEY_BYTES));
    if frame_bytes < RECORD_HEADER_BYTES + key_bytes {
        return Err(FrameError::Lengths);
    }
    let frame = bytes.get(..frame_bytes).ok_or(FrameError::Truncated)?;
    let seed = record_seed(shard_uid, record_index);
    if xxh3_64_with_seed(&frame[record_offset::FRAME_BYTES..], seed) != u64_at(frame, record_offset::XXH3) {
        return Err(FrameError::RecordChecksum { record_index });
    }
    let flags = u16_at(header, record_offset::FLAGS);
    if flags & !RECORD_FLAGS_KNOWN != 0 {
        return Err(FrameError::RecordFlags { record_index, flags });
    }
    Ok(RecordView {
        record_index,
        flags,
        key: &frame[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + key_bytes],
        data: &frame[RECORD_HEADER_BYTES + key_bytes..],
        offset_in_run,
    })
}

/// A batch found valid by [`scan_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedBatch {
    pub offset: usize,
    pub header: BatchHeader,
    pub runs: Vec<ScannedRun>,
}

/// What recovery keeps of a run: enough to index it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedRun {
    pub shard_uid: u64,
    pub first_index: u64,
    pub record_count: u32,
    pub run_bytes: u32,
    pub timestamp_ms: i64,
    pub raft: Option<RaftPosition>,
    /// Offset of the run header from the start of the segment.
    pub offset: usize,
}

/// How a segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte after the last commit is zero or absent.
    Clean,
    /// The commit starting at `offset` is incomplete or fails its checks (first failure at
    /// `error_offset`) and no later commit follows it: the last group commit was cut short,
    /// so none of it was acknowledged.
    Torn { offset: usize, error_offset: usize, error: FrameError },
    /// The batch at `offset` fails its checks but a later commit follows it. Commits are
    /// written one at a time, each only after the previous one was durable, so the bad batch
    /// was acknowledged: this is corruption, and the engine must refuse to serve.
    Corrupt { offset: usize, error: FrameError },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Batches of complete commits, in order.
    pub batches: Vec<ScannedBatch>,
    /// End of the last complete commit, padding included: where the next commit goes.
    /// May pass the bytes given when a cut fell inside the last batch's padding.
    pub valid_bytes: usize,
    pub end: SegmentEnd,
}

/// Walks a whole segment (`bytes` starts at segment offset 0, journal position `base`) and
/// checks every batch and every commit. Never panics, whatever the bytes.
pub fn scan_segment(bytes: &[u8], base: u64) -> SegmentScan {
    let mut batches: Vec<ScannedBatch> = Vec::new();
    // Batches of the commit being read, not yet known to be complete.
    let mut open: Vec<ScannedBatch> = Vec::new();
    let mut valid_bytes = 0usize;
    let mut offset = 0usize;
    let failure = loop {
        if offset >= bytes.len() {
            break None;
        }
        let (header, runs) = match decode_batch(&bytes[offset..], base + offset as u64) {
            Ok(decoded) => decoded,
            Err(error) => break Some(error),
        };
        // A commit starts exactly when none is open.
        let starts = header.flags & COMMIT_START != 0;
        if starts != open.is_empty() || header.flags & !(COMMIT_START | COMMIT_END) != 0 {
            break Some(FrameError::CommitSequence(header.flags));
        }
        let runs = runs
            .iter()
            .map(|run| ScannedRun {
                shard_uid: run.shard_uid,
                first_index: run.first_index,
                record_count: run.record_count,
                run_bytes: run.bytes.len() as u32,
                timestamp_ms: run.timestamp_ms,
                raft: run.raft,
                offset: offset + run.offset_in_batch,
            })
            .collect();
        open.push(ScannedBatch { offset, header, runs });
        offset += header.padded_bytes as usize;
        if header.flags & COMMIT_END != 0 {
            batches.append(&mut open);
            valid_bytes = offset;
        }
    };
    let end = match failure {
        None if open.is_empty() => SegmentEnd::Clean,
        None => SegmentEnd::Torn { offset: valid_bytes, error_offset: offset, error: FrameError::Truncated },
        Some(error) => {
            if commit_start_after(bytes, offset, base) {
                SegmentEnd::Corrupt { offset, error }
            } else if open.is_empty() && bytes[offset..].iter().all(|&b| b == 0) {
                SegmentEnd::Clean
            } else {
                SegmentEnd::Torn { offset: valid_bytes, error_offset: offset, error }
            }
        }
    };
    SegmentScan { batches, valid_bytes, end }
}

/// Is there a valid first batch of a commit at some block boundary after `offset`?
fn commit_start_after(bytes: &[u8], offset: usize, base: u64) -> bool {
    let mut candidate = align_up(offset + 1, BLOCK_BYTES);
    while candidate + BATCH_HEADER_BYTES <= bytes.len() {
        if u32_at(bytes, candidate) == BATCH_MAGIC {
            if let Ok((header, _)) = decode_batch(&bytes[candidate..], base + candidate as u64) {
                if header.flags & COMMIT_START != 0 {
                    return true;
                }
            }
        }
        candidate += BLOCK_BYTES;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Segment index checkpoints (`*.idx`) and watermarks (`watermarks`): small files replaced
// atomically, each ending in an XXH3-64 of everything before it.

/// Trailing checksum of a checkpoint or watermarks file.
pub const FILE_XXH3_BYTES: usize = 8;

/// "SLX1": a sealed segment's index checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"SLX1";
/// "SLX2": the checkpoint of a segment some of whose runs carry a Raft position: each entry
/// is [`CHECKPOINT_RAFT_ENTRY_BYTES`] long. A segment without one keeps "SLX1".
pub const CHECKPOINT_RAFT_MAGIC: [u8; 4] = *b"SLX2";
pub const CHECKPOINT_HEADER_BYTES: usize = 16;
pub mod checkpoint_offset {
    pub const MAGIC: usize = 0; // [u8; 4]
    pub const BASE: usize = 4; // u64, journal position of the segment's first byte
    pub const RUN_COUNT: usize = 12; // u32
}
pub const CHECKPOINT_ENTRY_BYTES: usize = 40;
pub mod checkpoint_entry_offset {
    pub const SHARD_UID: usize = 0; // u64
    pub const FIRST_INDEX: usize = 8; // u64
    pub const RECORD_COUNT: usize = 16; // u32
    pub const RUN_BYTES: usize = 20; // u32
    pub const POSITION: usize = 24; // u64, journal position of the run header
    pub const TIMESTAMP_MS: usize = 32; // i64
    pub const RAFT_TERM: usize = 40; // u64, SLX2 only
    pub const RAFT_INDEX: usize = 48; // u64, SLX2 only; 0: the run carries no Raft position
}
pub const CHECKPOINT_RAFT_ENTRY_BYTES: usize = 56;
const _: () = assert!(checkpoint_offset::RUN_COUNT + 4 == CHECKPOINT_HEADER_BYTES);
const _: () = assert!(checkpoint_entry_offset::TIMESTAMP_MS + 8 == CHECKPOINT_ENTRY_BYTES);
const _: () = assert!(checkpoint_entry_offset::RAFT_INDEX + 8 == CHECKPOINT_RAFT_ENTRY_BYTES);

/// A segment's runs as its checkpoint lists them: `(shard uid, run)` in journal order, and
/// the Raft positions of those runs that carry one, by run position, in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRuns {
    pub runs: Vec<(u64, RunEntry)>,
    pub raft: Vec<(u64, RaftPosition)>,
}

impl SegmentRuns {
    /// Each run with its Raft position, if it carries one.
    pub fn with_raft(&self) -> impl Iterator<Item = (&(u64, RunEntry), Option<RaftPosition>)> {
        let mut raft = self.raft.iter().peekable();
        self.runs.iter().map(move |entry| {
            let position = raft.next_if(|(at, _)| *at == entry.1.position).map(|(_, position)| *position);
            (entry, position)
        })
    }

    /// Shard `shard_uid`'s runs that carry a Raft position, with it, in journal order.
    pub fn positioned(&self, shard_uid: u64) -> Vec<(RunEntry, RaftPosition)> {
        let of_shard = self.with_raft().filter(|((uid, _), _)| *uid == shard_uid);
        of_shard.filter_map(|((_, run), raft)| Some((*run, raft?))).collect()
    }
}

/// "SLW1": the watermarks file.
pub const WATERMARKS_MAGIC: [u8; 4] = *b"SLW1";
pub const WATERMARKS_HEADER_BYTES: usize = 8;
pub mod watermarks_offset {
    pub const MAGIC: usize = 0; // [u8; 4]
    pub const SHARD_COUNT: usize = 4; // u32
}
pub const WATERMARK_ENTRY_BYTES: usize = 32;
pub mod watermark_entry_offset {
    pub const SHARD_UID: usize = 0; // u64, strictly increasing from entry to entry
    pub const NEXT_INDEX: usize = 8; // u64, the index the shard's next record gets
    pub const TRIM_INDEX: usize = 16; // u64, first retained index, or FORGOTTEN
    pub const LAST_TIMESTAMP_MS: usize = 24; // i64, arrival time of its newest record
}
const _: () = assert!(watermarks_offset::SHARD_COUNT + 4 == WATERMARKS_HEADER_BYTES);
const _: () = assert!(watermark_entry_offset::LAST_TIMESTAMP_MS + 8 == WATERMARK_ENTRY_BYTES);

/// Why a checkpoint or watermarks file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("shorter than its header and checksum")]
    Truncated,
    #[error("checksum mismatch")]
    Checksum,
    #[error("bad magic")]
    Magic,
    #[error("checkpoint of the segment at {actual}, expected {expected}")]
    Base { expected: u64, actual: u64 },
    #[error("{count} entries do not fill {bytes} bytes")]
    Lengths { count: u32, bytes: usize },
    #[error("run {ordinal} is empty without a Raft position, too short for its records, outside the segment, not after the previous run, or has a Raft term without an index")]
    RunOutOfPlace { ordinal: usize },
    #[error("entry {ordinal} is not in increasing shard order, or trims past its next index")]
    Order { ordinal: usize },
    #[error("a checkpoint with Raft positions lists none")]
    NoRaftPositions,
}

/// Splits `bytes` into the part the trailing checksum covers, after checking it.
fn checked_body(bytes: &[u8], header_bytes: usize) -> Result<&[u8], CheckpointError> {
    if bytes.len() < header_bytes + FILE_XXH3_BYTES {
        return Err(CheckpointError::Truncated);
    }
    let (body, checksum) = bytes.split_at(bytes.len() - FILE_XXH3_BYTES);
    if xxh3_64(body) != u64_at(checksum, 0) {
        return Err(CheckpointError::Checksum);
    }
    Ok(body)
}

/// Encodes a sealed segment's runs (`(shard uid, run)`, any order) as its checkpoint, with the
/// Raft positions of the runs that carry one (`(run position, position)`, any order).
pub fn encode_segment_checkpoint(base: u64, runs: &[(u64, RunEntry)], raft: &[(u64, RaftPosition)]) -> Vec<u8> {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|(_, run)| run.position);
    let raft: std::collections::HashMap<u64, RaftPosition> = raft.iter().copied().collect();
    let (magic, entry_bytes) = if raft.is_empty() {
        (CHECKPOINT_MAGIC, CHECKPOINT_ENTRY_BYTES)
    } else {
        (CHECKPOINT_RAFT_MAGIC, CHECKPOINT_RAFT_ENTRY_BYTES)
    };
    let mut bytes = vec![0u8; CHECKPOINT_HEADER_BYTES + sorted.len() * entry_bytes];
    put(&mut bytes, checkpoint_offset::MAGIC, &magic);
    put(&mut bytes, checkpoint_offset::BASE, &base.to_le_bytes());
    let count = u32::try_from(sorted.len()).expect("a segment holds fewer than 2^32 runs");
    put(&mut bytes, checkpoint_offset::RUN_COUNT, &count.to_le_bytes());
    for (ordinal, (uid, run)) in sorted.iter().enumerate() {
        let entry = &mut bytes[CHECKPOINT_HEADER_BYTES + ordinal * entry_bytes..];
        put(entry, checkpoint_entry_offset::SHARD_UID, &uid.to_le_bytes());
        put(entry, checkpoint_entry_offset::FIRST_INDEX, &run.first_index.to_le_bytes());
        put(entry, checkpoint_entry_offset::RECORD_COUNT, &run.record_count.to_le_bytes());
        put(entry, checkpoint_entry_offset::RUN_BYTES, &run.run_bytes.to_le_bytes());
        put(entry, checkpoint_entry_offset::POSITION, &run.position.to_le_bytes());
        put(entry, checkpoint_entry_offset::TIMESTAMP_MS, &run.timestamp_ms.to_le_bytes());
        if let Some(position) = raft.get(&run.position) {
            put(entry, checkpoint_entry_offset::RAFT_TERM, &position.term.to_le_bytes());
            put(entry, checkpoint_entry_offset::RAFT_INDEX, &position.index.to_le_bytes());
        }
    }
    let checksum = xxh3_64(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Decodes the checkpoint of the segment at `base` whose file holds `segment_bytes` bytes:
/// its runs in journal order. Any failed check refuses the whole checkpoint (recovery then
/// scans the segment instead). Never panics, whatever the bytes.
pub fn decode_segment_checkpoint(bytes: &[u8], base: u64, segment_bytes: u64) -> Result<SegmentRuns, CheckpointError> {
    let body = checked_body(bytes, CHECKPOINT_HEADER_BYTES)?;
    let magic = &body[checkpoint_offset::MAGIC..checkpoint_offset::MAGIC + 4];
    let entry_bytes = if magic == CHECKPOINT_MAGIC {
        CHECKPOINT_ENTRY_BYTES
    } else if magic == CHECKPOINT_RAFT_MAGIC {
        CHECKPOINT_RAFT_ENTRY_BYTES
    } else {
        return Err(CheckpointError::Magic);
    };
    let actual = u64_at(body, checkpoint_offset::BASE);
    if actual != base {
        return Err(CheckpointError::Base { expected: base, actual });
    }
    let count = u32_at(body, checkpoint_offset::RUN_COUNT);
    let entries = &body[CHECKPOINT_HEADER_BYTES..];
    if entries.len() as u64 != u64::from(count) * entry_bytes as u64 {
        return Err(CheckpointError::Lengths { count, bytes: bytes.len() });
    }
    let end = base.saturating_add(segment_bytes);
    let mut decoded = SegmentRuns { runs: Vec::with_capacity(count as usize), raft: Vec::new() };
    let mut previous_end = base;
    for (ordinal, entry) in entries.chunks_exact(entry_bytes).enumerate() {
        let run = RunEntry {
            first_index: u64_at(entry, checkpoint_entry_offset::FIRST_INDEX),
            record_count: u32_at(entry, checkpoint_entry_offset::RECORD_COUNT),
            run_bytes: u32_at(entry, checkpoint_entry_offset::RUN_BYTES),
            position: u64_at(entry, checkpoint_entry_offset::POSITION),
            timestamp_ms: i64_at(entry, checkpoint_entry_offset::TIMESTAMP_MS),
        };
        let listed = (entry_bytes == CHECKPOINT_RAFT_ENTRY_BYTES).then(|| RaftPosition {
            term: u64_at(entry, checkpoint_entry_offset::RAFT_TERM),
            index: u64_at(entry, checkpoint_entry_offset::RAFT_INDEX),
        });
        let raft = listed.filter(|position| position.index > 0);
        // No position is written as zeros: a term without an index is damage.
        let stray_term = listed.is_some_and(|position| position.index == 0 && position.term != 0);
        let header_bytes = RaftPosition::run_header_bytes(raft) as u64;
        let smallest_run = header_bytes + RECORD_HEADER_BYTES as u64 * u64::from(run.record_count);
        let run_end = run.position.checked_add(u64::from(run.run_bytes));
        // A run without records is a position-only run, which has a position.
        let in_place = !stray_term
            && (run.record_count > 0 || raft.is_some())
            && run.record_count < RUN_RAFT
            && u64::from(run.run_bytes) >= smallest_run
            && run.position >= previous_end
            && run_end.is_some_and(|run_end| run_end <= end)
            && run.first_index.checked_add(u64::from(run.record_count)).is_some();
        if !in_place {
            return Err(CheckpointError::RunOutOfPlace { ordinal });
        }
        previous_end = run_end.expect("checked above");
        if let Some(raft) = raft {
            decoded.raft.push((run.position, raft));
        }
        decoded.runs.push((u64_at(entry, checkpoint_entry_offset::SHARD_UID), run));
    }
    // A checkpoint "SLX2" whose runs carry no Raft position would not encode back the same.
    if entry_bytes == CHECKPOINT_RAFT_ENTRY_BYTES && decoded.raft.is_empty() {
        return Err(CheckpointError::NoRaftPositions);
    }
    Ok(decoded)
}

/// What a retention pass persists about a shard before it deletes segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// The index the shard's next record gets: none below it is ever handed out again.
    pub next_index: u64,
    /// The first index still retained: every record below it expired, and its segment may be
    /// gone, so recovery ignores runs below it instead of calling the hole a loss.
    /// [`Watermark::FORGOTTEN`] for a shard whose stream was deleted: all its runs are ignored.
    pub trim_index: u64,
    /// Arrival time of the shard's newest record: later records never get an earlier one.
    pub last_timestamp_ms: i64,
}

impl Watermark {
    pub const FORGOTTEN: u64 = u64::MAX;

    pub fn forgotten() -> Watermark {
        Watermark { next_index: 0, trim_index: Watermark::FORGOTTEN, last_timestamp_ms: i64::MIN }
    }

    pub fn is_forgotten(&self) -> bool {
        self.trim_index == Watermark::FORGOTTEN
    }
}

/// Per shard uid.
pub type Watermarks = std::collections::BTreeMap<u64, Watermark>;

pub fn encode_watermarks(watermarks: &Watermarks) -> Vec<u8> {
    let mut bytes = vec![0u8; WATERMARKS_HEADER_BYTES + watermarks.len() * WATERMARK_ENTRY_BYTES];
    put(&mut bytes, watermarks_offset::MAGIC, &WATERMARKS_MAGIC);
    let count = u32::try_from(watermarks.len()).expect("fewer than 2^32 shards per core");
    put(&mut bytes, watermarks_offset::SHARD_COUNT, &count.to_le_bytes());
    for (ordinal, (uid, watermark)) in watermarks.iter().enumerate() {
        let entry = &mut bytes[WATERMARKS_HEADER_BYTES + ordinal * WATERMARK_ENTRY_BYTES..];
        put(entry, watermark_entry_offset::SHARD_UID, &uid.to_le_bytes());
        put(entry, watermark_entry_offset::NEXT_INDEX, &watermark.next_index.to_le_bytes());
        put(entry, watermark_entry_offset::TRIM_INDEX, &watermark.trim_index.to_le_bytes());
        put(entry, watermark_entry_offset::LAST_TIMESTAMP_MS, &watermark.last_timestamp_ms.to_le_bytes());
    }
    let checksum = xxh3_64(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Decodes a watermarks file. Never panics, whatever the bytes.
pub fn decode_watermarks(bytes: &[u8]) -> Result<Watermarks, CheckpointError> {
    let body = checked_body(bytes, WATERMARKS_HEADER_BYTES)?;
    if body[watermarks_offset::MAGIC..watermarks_offset::MAGIC + 4] != WATERMARKS_MAGIC {
        return Err(CheckpointError::Magic);
    }
    let count = u32_at(body, watermarks_offset::SHARD_COUNT);
    let entries = &body[WATERMARKS_HEADER_BYTES..];
    if entries.len() as u64 != u64::from(count) * WATERMARK_ENTRY_BYTES as u64 {
        return Err(CheckpointError::Lengths { count, bytes: bytes.len() });
    }
    let mut watermarks = Watermarks::new();
    for (ordinal, entry) in entries.chunks_exact(WATERMARK_ENTRY_BYTES).enumerate() {
        let uid = u64_at(entry, watermark_entry_offset::SHARD_UID);
        if watermarks.last_key_value().is_some_and(|(&previous, _)| previous >= uid) {
            return Err(CheckpointError::Order { ordinal });
        }
        let watermark = Watermark {
            next_index: u64_at(entry, watermark_entry_offset::NEXT_INDEX),
            trim_index: u64_at(entry, watermark_entry_offset::TRIM_INDEX),
            last_timestamp_ms: i64_at(entry, watermark_entry_offset::LAST_TIMESTAMP_MS),
        };
        if !watermark.is_forgotten() && watermark.trim_index > watermark.next_index {
            return Err(CheckpointError::Order { ordinal });
        }
        watermarks.insert(uid, watermark);
    }
    Ok(watermarks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(shard, first_index, records (key, data))`: one run of a test batch.
    type TestRun<'a> = (u64, u64, Vec<(&'a [u8], &'a [u8])>);

    /// Builds a batch of runs at `position`.
    fn batch_with_flags(position: u64, flags: u16, runs: &[TestRun<'_>]) -> Vec<u8> {
        batch_with_raft(position, flags, runs, |_| None)
    }

    /// Builds a batch of runs at `position`, run `i` with Raft position `raft(i)`.
    fn batch_with_raft(
        position: u64,
        flags: u16,
        runs: &[TestRun<'_>],
        raft: impl Fn(usize) -> Option<RaftPosition>,
    ) -> Vec<u8> {
        let mut used = BATCH_HEADER_BYTES;
        for (ordinal, (_, _, records)) in runs.iter().enumerate() {
            used += RaftPosition::run_header_bytes(raft(ordinal));
            used += records.iter().map(|(k, d)| record_bytes(k.len(), d.len())).sum::<usize>();
        }
        let mut writer = BatchWriter::new(vec![0xAA; align_up(used, BLOCK_BYTES)]);
        for (ordinal, (shard, first, records)) in runs.iter().enumerate() {
            assert!(records.iter().all(|(k, d)| writer.fits(k.len(), d.len(), 0)));
            writer.begin_run(*shard, *first, 1_000, raft(ordinal));
            for (key, data) in records {
                writer.push_record(key, data, 0);
            }
        }
        let (buffer, padded) = writer.finish(position, 1_000, flags, BLOCK_BYTES);
        assert_eq!(padded, buffer.len());
        buffer
    }

    fn batch(position: u64, runs: &[TestRun<'_>]) -> Vec<u8> {
        batch_with_flags(position, COMMIT_START | COMMIT_END, runs)
    }

    #[test]
    fn batch_round_trips() {
        let bytes = batch(0, &[(7, 0, vec![(b"k1", b"hello"), (b"k2", b"")]), (9, 5, vec![(b"x", b"y")])]);
        let (header, runs) = decode_batch(&bytes, 0).unwrap();
        assert_eq!((header.run_count, header.record_count), (2, 3));
        let records: Vec<_> = runs[0].records().collect::<Result<_, _>>().unwrap();
        assert_eq!(records[0].key, b"k1");
        assert_eq!(records[0].data, b"hello");
        assert_eq!(records[1].record_index, 1);
        let other: Vec<_> = runs[1].records().collect::<Result<_, _>>().unwrap();
        assert_eq!((other[0].record_index, other[0].data), (5, &b"y"[..]));
    }

    #[test]
    fn a_batch_at_the_wrong_position_is_rejected() {
        let bytes = batch(512, &[(1, 0, vec![(b"k", b"v")])]);
        assert_eq!(decode_batch(&bytes, 1024).unwrap_err(), FrameError::Position { expected: 1024, actual: 512 });
    }

    #[test]
    fn record_checksums_bind_shard_and_index() {
        let bytes = batch(0, &[(1, 0, vec![(b"k", b"v")])]);
        let (_, runs) = decode_batch(&bytes, 0).unwrap();
        let mut moved = runs[0];
        moved.shard_uid = 2;
        assert!(matches!(moved.records().next(), Some(Err(FrameError::RecordChecksum { .. }))));
    }

    /// A replicated shard's runs carry their Raft entry's position (version 3); other runs of
    /// the same batch keep the short header, and a batch without such runs stays version 2.
    #[test]
    fn runs_carry_raft_positions_in_version_3_batches() {
        let position = RaftPosition { term: 4, index: 91 };
        let runs = [(7, 0, vec![(&b"k1"[..], &b"hello"[..]), (b"k2", b"")]), (9, 5, vec![(b"x", b"y")])];
        let bytes = batch_with_raft(0, COMMIT_START | COMMIT_END, &runs, |i| (i == 0).then_some(position));
        let (header, decoded) = decode_batch(&bytes, 0).unwrap();
        assert_eq!((header.version, header.run_count, header.record_count), (3, 2, 3));
        assert_eq!((decoded[0].raft, decoded[0].record_count, decoded[0].header_bytes()), (Some(position), 2, 48));
        assert_eq!((decoded[1].raft, decoded[1].header_bytes()), (None, 32));
        let records: Vec<_> = decoded[0].records().collect::<Result<_, _>>().unwrap();
        assert_eq!((records[0].key, records[0].data, records[1].record_index), (&b"k1"[..], &b"hello"[..], 1));
        // A run decoded alone, as a read does from the index's position, finds its length.
        let alone = decode_run(&bytes[decoded[0].offset_in_batch..], 0).unwrap();
        assert_eq!((alone.raft, alone.records().count()), (Some(position), 2));
        // The Raft position is covered by the batch's checksum: every flipped byte fails.
        let body_bytes = header.body_bytes as usize;
        for offset in BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + body_bytes {
            let mut flipped = bytes.clone();
            flipped[offset] ^= 0x10;
            assert!(decode_batch(&flipped, 0).is_err(), "flip at {offset} passed");
        }
        // An older version's batch cannot hold such a run.
        assert_eq!(decode_batch(&with_version(bytes, 2), 0).unwrap_err(), FrameError::RaftRunInVersion(2));
        let plain = batch(0, &runs);
        assert_eq!(decode_batch_header(&plain, 0).unwrap().version, FORMAT_VERSION_WITHOUT_RAFT);
        // Raft indexes start at 1: a run claiming index 0 is refused on its own.
        let zero =
            batch_with_raft(0, COMMIT_START | COMMIT_END, &runs[1..], |_| Some(RaftPosition { term: 1, index: 1 }));
        let mut zero = zero;
        zero[BATCH_HEADER_BYTES + run_offset::RAFT_INDEX] = 0;
        assert_eq!(decode_run(&zero[BATCH_HEADER_BYTES..], 0).unwrap_err(), FrameError::RaftIndexZero);
    }

    /// An entry without records is a run with a Raft position and no records; a run without
    /// records and without a position is refused, alone and in its batch.
    #[test]
    fn position_only_runs_hold_no_records_and_need_a_position() {
        let position = RaftPosition { term: 5, index: 12 };
        let runs = [(7, 1, vec![(&b"k"[..], &b"v"[..])]), (7, 2, vec![]), (9, 5, vec![(b"x", b"y")])];
        let raft = |i: usize| (i < 2).then_some(RaftPosition { term: 5, index: 11 + i as u64 });
        let bytes = batch_with_raft(0, COMMIT_START | COMMIT_END, &runs, raft);
        let (header, decoded) = decode_batch(&bytes, 0).unwrap();
        assert_eq!((header.version, header.run_count, header.record_count), (3, 3, 2));
        let only = decoded[1];
        assert_eq!((only.raft, only.first_index, only.record_count), (Some(position), 2, 0));
        assert_eq!((only.bytes.len(), only.records().count()), (RUN_RAFT_HEADER_BYTES, 0));
        let alone = decode_run(&bytes[only.offset_in_batch..], only.offset_in_batch).unwrap();
        assert_eq!(alone, only);
        let body_bytes = header.body_bytes as usize;
        for offset in BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + body_bytes {
            let mut flipped = bytes.clone();
            flipped[offset] ^= 0x04;
            assert!(decode_batch(&flipped, 0).is_err(), "flip at {offset} passed");
        }
        // The same run without its position: 32 bytes of header and nothing else.
        let bare = batch(0, &[(7, 2, vec![])]);
        assert_eq!(decode_run(&bare[BATCH_HEADER_BYTES..], BATCH_HEADER_BYTES).unwrap_err(), FrameError::Lengths);
        assert_eq!(decode_batch(&bare, 0).unwrap_err(), FrameError::Lengths);
        // Listed in a checkpoint: with its position it is kept, without one refused.
        let listed =
            vec![(7, run_entry(1, 1, 64)), (7, RunEntry { record_count: 0, run_bytes: 48, ..run_entry(2, 0, 164) })];
        let checkpoint = encode_segment_checkpoint(0, &listed, &[(164, position)]);
        let decoded = decode_segment_checkpoint(&checkpoint, 0, 4096).unwrap();
        assert_eq!(decoded, SegmentRuns { runs: listed.clone(), raft: vec![(164, position)] });
        let unpositioned = encode_segment_checkpoint(0, &listed, &[(64, position)]);
        assert_eq!(
            decode_segment_checkpoint(&unpositioned, 0, 4096),
            Err(CheckpointError::RunOutOfPlace { ordinal: 1 })
        );
    }

    /// Rewrites a version-2 batch as version 1 wrote it: the body's checksum in place of the
    /// headers' (records and their own checksums are the same in both versions).
    fn as_version_1(mut bytes: Vec<u8>) -> Vec<u8> {
        let header = decode_batch_header(&bytes, u64_at(&bytes, batch_offset::POSITION)).unwrap();
        let body_xxh3 = xxh3_64(&bytes[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + header.body_bytes as usize]);
        put(&mut bytes, batch_offset::VERSION, &1u16.to_le_bytes());
        put(&mut bytes, batch_offset::HEADERS_XXH3, &body_xxh3.to_le_bytes());
        let header_xxh3 = xxh3_64(&bytes[..batch_offset::HEADER_XXH3]);
        put(&mut bytes, batch_offset::HEADER_XXH3, &header_xxh3.to_le_bytes());
        bytes
    }

    fn with_version(mut bytes: Vec<u8>, version: u16) -> Vec<u8> {
        put(&mut bytes, batch_offset::VERSION, &version.to_le_bytes());
        let header_xxh3 = xxh3_64(&bytes[..batch_offset::HEADER_XXH3]);
        put(&mut bytes, batch_offset::HEADER_XXH3, &header_xxh3.to_le_bytes());
        bytes
    }

    #[test]
    fn version_1_batches_are_still_read_and_verified() {
        let v1 = as_version_1(batch(0, &[(7, 0, vec![(b"k1", b"hello"), (b"k2", b"")]), (9, 5, vec![(b"x", b"y")])]));
        let (header, runs) = decode_batch(&v1, 0).unwrap();
        assert_eq!((header.version, header.run_count, header.record_count), (1, 2, 3));
        let records: Vec<_> = runs[0].records().collect::<Result<_, _>>().unwrap();
        assert_eq!((records[0].key, records[0].data), (&b"k1"[..], &b"hello"[..]));
        // Version 1's body checksum covers the data: one flipped byte fails the batch.
        let mut flipped = v1.clone();
        flipped[BATCH_HEADER_BYTES + RUN_HEADER_BYTES + RECORD_HEADER_BYTES + 3] ^= 1;
        assert_eq!(decode_batch(&flipped, 0).unwrap_err(), FrameError::BodyChecksum);
    }

    #[test]
    fn versions_outside_the_readable_range_are_refused() {
        let bytes = batch(0, &[(1, 0, vec![(b"k", b"v")])]);
        for version in [0, FORMAT_VERSION + 1, u16::MAX] {
            assert_eq!(
                decode_batch(&with_version(bytes.clone(), version), 0).unwrap_err(),
                FrameError::Version(version)
            );
        }
    }

    /// Version 2 hashes record data only in the records' own checksums: a flip anywhere in the
    /// body (data, key, record header, run header) still fails `decode_batch`.
    #[test]
    fn version_2_batches_fail_on_any_flipped_body_byte() {
        let bytes = batch(0, &[(7, 0, vec![(b"k1", b"hello"), (b"k2", b"")]), (9, 5, vec![(b"x", b"y")])]);
        let body_bytes = decode_batch_header(&bytes, 0).unwrap().body_bytes as usize;
        for offset in BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + body_bytes {
            let mut flipped = bytes.clone();
            flipped[offset] ^= 0x10;
            assert!(decode_batch(&flipped, 0).is_err(), "flip at {offset} passed");
        }
    }

    fn segment(batch_count: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..batch_count {
            let data = vec![i as u8; 100 + 300 * i];
            bytes.extend(batch(bytes.len() as u64, &[(1, i as u64, vec![(b"key", &data)])]));
        }
        bytes
    }

    #[test]
    fn scan_finds_every_batch_and_a_clean_end() {
        let mut bytes = segment(4);
        let full = bytes.len();
        bytes.extend(vec![0u8; 4096]);
        let scan = scan_segment(&bytes, 0);
        assert_eq!(scan.batches.len(), 4);
        assert_eq!(scan.valid_bytes, full);
        assert_eq!(scan.end, SegmentEnd::Clean);
    }

    #[test]
    fn a_cut_anywhere_in_the_last_batch_is_a_torn_tail() {
        let bytes = segment(3);
        let last = scan_segment(&bytes, 0).batches[2].clone();
        let body_end = last.offset + BATCH_HEADER_BYTES + last.header.body_bytes as usize;
        for cut in last.offset..bytes.len() {
            let scan = scan_segment(&bytes[..cut], 0);
            if cut >= body_end {
                // Only padding was lost: the batch is whole.
                assert_eq!(scan.batches.len(), 3, "cut at {cut}");
                assert_eq!((scan.valid_bytes, &scan.end), (bytes.len(), &SegmentEnd::Clean));
                continue;
            }
            assert_eq!(scan.batches.len(), 2, "cut at {cut}");
            assert_eq!(scan.valid_bytes, last.offset);
            if cut == last.offset {
                assert_eq!(scan.end, SegmentEnd::Clean);
            } else {
                let torn = matches!(scan.end, SegmentEnd::Torn { offset, .. } if offset == last.offset);
                assert!(torn, "cut at {cut}: {:?}", scan.end);
            }
        }
    }

    /// A commit of three batches written concurrently: any subset of them may have reached
    /// the disk when the process died; unless all did, the whole commit is dropped.
    #[test]
    fn an_incomplete_multi_batch_commit_is_torn_whatever_landed() {
        let bytes = segment(2);
        let commit_at = bytes.len();
        let mut parts = Vec::new();
        for (i, flags) in [COMMIT_START, 0, COMMIT_END].into_iter().enumerate() {
            let position = (bytes.len() + parts.iter().map(Vec::len).sum::<usize>()) as u64;
            let data = vec![i as u8; 700];
            parts.push(batch_with_flags(position, flags, &[(1, 2 + i as u64, vec![(b"k", &data)])]));
        }
        for landed in 0u8..8 {
            let mut torn = bytes.clone();
            for (i, part) in parts.iter().enumerate() {
                let content = if landed & (1 << i) != 0 { part.clone() } else { vec![0; part.len()] };
                torn.extend(content);
            }
            let scan = scan_segment(&torn, 0);
            if landed == 0b111 {
                assert_eq!((scan.batches.len(), &scan.end), (5, &SegmentEnd::Clean));
            } else {
                assert_eq!(scan.batches.len(), 2, "landed {landed:03b}");
                assert_eq!(scan.valid_bytes, commit_at);
                let clean_or_torn = match scan.end {
                    SegmentEnd::Clean => true,
                    SegmentEnd::Torn { offset, .. } => offset == commit_at,
                    SegmentEnd::Corrupt { .. } => false,
                };
                assert!(clean_or_torn, "landed {landed:03b}: {:?}", scan.end);
            }
        }
        // Once a later commit exists, a hole in this one is corruption.
        let mut followed = bytes.clone();
        followed.extend(&parts[0]);
        followed.extend(vec![0; parts[1].len()]);
        followed.extend(&parts[2]);
        let after = followed.len() as u64;
        followed.extend(batch(after, &[(1, 9, vec![(b"k", b"later")])]));
        let hole = commit_at + parts[0].len();
        assert!(matches!(scan_segment(&followed, 0).end, SegmentEnd::Corrupt { offset, .. } if offset == hole));
    }

    #[test]
    fn a_bit_flip_before_the_last_batch_is_corruption() {
        let bytes = segment(3);
        let second = scan_segment(&bytes, 0).batches[1].clone();
        let end = second.offset + BATCH_HEADER_BYTES + second.header.body_bytes as usize;
        for at in second.offset..end {
            for bit in [0, 3, 7] {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                let scan = scan_segment(&flipped, 0);
                assert!(
                    matches!(scan.end, SegmentEnd::Corrupt { offset, .. } if offset == second.offset),
                    "flip at {at} bit {bit}: {:?}",
                    scan.end
                );
            }
        }
    }

    fn run_entry(first_index: u64, record_count: u32, position: u64) -> RunEntry {
        RunEntry { first_index, record_count, run_bytes: 100, position, timestamp_ms: 7 }
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_any_damage() {
        let runs = vec![(2, run_entry(5, 2, 4096 + 600)), (1, run_entry(1, 3, 4096 + 64))];
        let raft_positions = [vec![], vec![(4096 + 600, RaftPosition { term: 3, index: 12 })]];
        for raft in raft_positions {
            let bytes = encode_segment_checkpoint(4096, &runs, &raft);
            let magic = if raft.is_empty() { CHECKPOINT_MAGIC } else { CHECKPOINT_RAFT_MAGIC };
            assert_eq!(bytes[..4], magic);
            let decoded = decode_segment_checkpoint(&bytes, 4096, 2048).unwrap();
            assert_eq!(decoded, SegmentRuns { runs: vec![runs[1], runs[0]], raft: raft.clone() }, "journal order");
            assert_eq!(encode_segment_checkpoint(4096, &decoded.runs, &decoded.raft), bytes);
            assert_eq!(
                decode_segment_checkpoint(&bytes, 0, 2048),
                Err(CheckpointError::Base { expected: 0, actual: 4096 })
            );
            // The second run ends at 700: past a segment of 650 bytes.
            assert_eq!(
                decode_segment_checkpoint(&bytes, 4096, 650),
                Err(CheckpointError::RunOutOfPlace { ordinal: 1 })
            );
            for at in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x20;
                assert!(decode_segment_checkpoint(&flipped, 4096, 2048).is_err(), "flip at {at}");
            }
            for cut in 0..bytes.len() {
                assert!(decode_segment_checkpoint(&bytes[..cut], 4096, 2048).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn watermarks_round_trip_and_refuse_any_damage() {
        let watermark =
            |next_index, trim_index, last_timestamp_ms| Watermark { next_index, trim_index, last_timestamp_ms };
        let watermarks: Watermarks =
            [(3, watermark(17, 12, 1_000)), (9, watermark(1, 1, i64::MIN)), (11, Watermark::forgotten())]
                .into_iter()
                .collect();
        let bytes = encode_watermarks(&watermarks);
        assert_eq!(decode_watermarks(&bytes).unwrap(), watermarks);
        assert_eq!(decode_watermarks(&encode_watermarks(&Watermarks::new())).unwrap(), Watermarks::new());
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            assert!(decode_watermarks(&flipped).is_err(), "flip at {at}");
        }
    }
}
