//! The byte layout of a replica's Raft files (specified in `docs/replication.md`): the log,
//! segment files of checksummed frames, one Raft entry each, and two small records, the hard
//! state and where the log was compacted.
//! Pure functions, no I/O: the decoders read bytes from disk, which may be torn or garbage,
//! and must never panic on them (`tests/codec.rs` feeds them arbitrary bytes, and the fuzz
//! target `raft_log` does for longer).
//!
//! Log frame (little endian):
//!
//! | bytes      | field        | meaning                                                  |
//! |------------|--------------|----------------------------------------------------------|
//! | 0..4       | payload_len  | bytes of the payload; 0 marks the end of the log         |
//! | 4..12      | checksum     | XXH3-64 of the payload, seeded with `FRAME_SEED ^ payload_len` |
//! | 12..20     | term         | the entry's Raft term                                    |
//! | 20..28     | index        | the entry's Raft index                                   |
//! | 28         | entry_type   | 0 normal, 1 conf change, 2 conf change v2; bit 7: `after_sync` |
//! | 29..33     | context_len  | bytes of context that follow                             |
//! | 33..       | context,data | the entry's context, then its data (the rest)            |
//!
//! `after_sync` marks the first frame of an append made when every byte before it was synced.
//! Recovery uses it to tell a torn tail from damage to durable frames: only the last append
//! can be torn, so a damaged frame followed by a valid frame with the mark was durable.
//!
//! The log is only ever appended to. Raft may replace a suffix of a follower's log (entries of
//! a deposed leader that never committed): the replacement is appended, and a frame whose
//! index is not one past the previous one's replaces the entries from its index on. So the
//! decoded log is the last word on every index, as the file was written.
//!
//! The types here are this file's own, not raft-rs': the codec builds without raft-rs (and
//! without glommio), so the fuzz target `raft_log` links only it.

use bytes::Bytes;
use sluice_engine::checksum::xxh3_64_with_seed;

use crate::limits::ENTRY_PAYLOAD_BYTES_MAX;

pub const FRAME_HEADER_BYTES: usize = 12;
/// term, index, entry_type, context_len.
pub const PAYLOAD_FIXED_BYTES: usize = 8 + 8 + 1 + 4;
/// Distinguishes these checksums from the engine's (a segment's bytes never pass as a frame).
pub const FRAME_SEED: u64 = 0x5261_6674_4c6f_6731; // "RaftLog1"

pub const HARD_STATE_MAGIC: [u8; 4] = *b"SLHS";
pub const HARD_STATE_VERSION: u32 = 1;
/// magic, version, term, vote, commit, checksum.
pub const HARD_STATE_BYTES: usize = 4 + 4 + 8 + 8 + 8 + 8;
/// The compaction record has the hard state's layout (magic, version, index, term, zero,
/// checksum) under its own magic.
pub const COMPACTED_MAGIC: [u8; 4] = *b"SLCP";
/// A restore's record (`journal_log::ShardRestore`) has the same layout with five words
/// (magic, version, the first entry written's index and term, where its records start, the
/// fence covered, flags, checksum) under its own magic.
pub const RESTORE_MAGIC: [u8; 4] = *b"SLRS";

/// The entry types a frame may carry (raft-rs' `EntryType`: normal, conf change, conf change
/// v2), numbered as raft-rs numbers them.
pub const ENTRY_TYPE_MAX: u8 = 2;
/// The bit of the entry type byte that carries `after_sync`.
const AFTER_SYNC_FLAG: u8 = 0x80;
/// Offset of the entry type byte in a frame.
const ENTRY_TYPE_AT: usize = FRAME_HEADER_BYTES + 16;

/// One entry as the log file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEntry {
    pub term: u64,
    pub index: u64,
    pub entry_type: u8,
    pub context: Bytes,
    pub data: Bytes,
    /// The first frame of an append made when everything before it in its segment was
    /// durable (see the module docs). Not part of the entry: a mark of where it was written.
    pub after_sync: bool,
}

/// The Raft hard state as its file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardStateRecord {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// Where the log was compacted: entries up to `index` (whose term was `term`) are gone from
/// it, and its first entry is `index + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactedRecord {
    pub index: u64,
    pub term: u64,
}

/// Why a log's bytes were not entirely a valid log. Only [`LogDefect::Gap`] is an error; the
/// others mark where the valid log ends (a torn or unwritten tail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDefect {
    /// Zeros: the padding after the last frame, or space never written.
    End,
    /// A frame header or payload that runs past the bytes, or a length out of range.
    Truncated,
    Checksum,
    /// A frame that checks but names an entry type we do not know.
    EntryType(u8),
    /// A frame that checks but leaves a hole in the log: not a torn write, a bug or corruption.
    Gap {
        expected_max: u64,
        actual: u64,
    },
}

/// A decoded log: its entries (first index 1, contiguous), how many bytes of the input they
/// take, and why decoding stopped there.
#[derive(Debug)]
pub struct DecodedLog {
    pub entries: Vec<LogEntry>,
    pub valid_bytes: usize,
    pub stop: LogDefect,
}

/// Bytes `entry` takes as a frame.
pub fn frame_bytes(entry: &LogEntry) -> usize {
    FRAME_HEADER_BYTES + PAYLOAD_FIXED_BYTES + entry.context.len() + entry.data.len()
}

/// Appends `entry` as one frame. Panics if it is larger than [`ENTRY_PAYLOAD_BYTES_MAX`]: the
/// replica refuses such proposals before they reach Raft, so a larger one is a bug.
pub fn encode_entry(entry: &LogEntry, out: &mut Vec<u8>) {
    let payload_len = PAYLOAD_FIXED_BYTES + entry.context.len() + entry.data.len();
    assert!(payload_len <= ENTRY_PAYLOAD_BYTES_MAX, "entry of {payload_len} bytes reached the log");
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&entry.term.to_le_bytes());
    out.extend_from_slice(&entry.index.to_le_bytes());
    assert!(entry.entry_type <= ENTRY_TYPE_MAX, "entry type {} reached the log", entry.entry_type);
    out.push(entry.entry_type | if entry.after_sync { AFTER_SYNC_FLAG } else { 0 });
    out.extend_from_slice(&(entry.context.len() as u32).to_le_bytes());
    out.extend_from_slice(&entry.context);
    out.extend_from_slice(&entry.data);
    let checksum = xxh3_64_with_seed(&out[start + FRAME_HEADER_BYTES..], FRAME_SEED ^ payload_len as u64);
    out[start + 4..start + 12].copy_from_slice(&checksum.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The length of the frame whose header starts `bytes`, as the header says (not checked).
pub fn frame_length(bytes: &[u8]) -> Option<usize> {
    Some(FRAME_HEADER_BYTES + u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize)
}

/// Decodes one frame at the start of `bytes`: the entry and the frame's length.
pub fn decode_frame(bytes: &[u8]) -> Result<(LogEntry, usize), LogDefect> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(if bytes.iter().all(|&byte| byte == 0) { LogDefect::End } else { LogDefect::Truncated });
    }
    let payload_len = u32_at(bytes, 0) as usize;
    if payload_len == 0 {
        return Err(LogDefect::End);
    }
    if !(PAYLOAD_FIXED_BYTES..=ENTRY_PAYLOAD_BYTES_MAX).contains(&payload_len) {
        return Err(LogDefect::Truncated);
    }
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + payload_len) else {
        return Err(LogDefect::Truncated);
    };
    if xxh3_64_with_seed(payload, FRAME_SEED ^ payload_len as u64) != u64_at(bytes, 4) {
        return Err(LogDefect::Checksum);
    }
    let entry_type = payload[16] & !AFTER_SYNC_FLAG;
    if entry_type > ENTRY_TYPE_MAX {
        return Err(LogDefect::EntryType(payload[16]));
    }
    let context_len = u32_at(payload, 17) as usize;
    let Some(rest) = payload.get(PAYLOAD_FIXED_BYTES..) else { return Err(LogDefect::Truncated) };
    if context_len > rest.len() {
        return Err(LogDefect::Truncated);
    }
    let entry = LogEntry {
        after_sync: payload[16] & AFTER_SYNC_FLAG != 0,
        entry_type,
        term: u64_at(payload, 0),
        index: u64_at(payload, 8),
        context: Bytes::copy_from_slice(&rest[..context_len]),
        data: Bytes::copy_from_slice(&rest[context_len..]),
    };
    Ok((entry, FRAME_HEADER_BYTES + payload_len))
}

/// Whether a valid frame marked `after_sync` starts `bytes`. Looks at the mark before the
/// checksum, so that scanning garbage for such a frame costs little per byte.
pub fn opens_synced_append(bytes: &[u8]) -> bool {
    let marked = bytes.get(ENTRY_TYPE_AT).is_some_and(|&byte| byte & AFTER_SYNC_FLAG != 0);
    marked && decode_frame(bytes).is_ok_and(|(entry, _)| entry.after_sync)
}

/// Decodes a log file's bytes, never panicking: frames up to the first that is not valid,
/// with later frames replacing the suffix they overlap (see the module docs).
pub fn decode_log(bytes: &[u8]) -> DecodedLog {
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut at = 0usize;
    loop {
        let (entry, length) = match decode_frame(&bytes[at..]) {
            Ok(frame) => frame,
            Err(stop) => return DecodedLog { entries, valid_bytes: at, stop },
        };
        if let Err(stop) = check_follows(entry.index, entries.len() as u64) {
            return DecodedLog { entries, valid_bytes: at, stop };
        }
        entries.truncate(entry.index as usize - 1);
        entries.push(entry);
        at += length;
    }
}

/// Whether a frame of entry `index` may follow a log of `last_index` entries: it extends the
/// log or replaces a suffix of it ([`LogDefect::Gap`] otherwise).
pub fn check_follows(index: u64, last_index: u64) -> Result<(), LogDefect> {
    let next = last_index + 1;
    if index == 0 || index > next {
        return Err(LogDefect::Gap { expected_max: next, actual: index });
    }
    Ok(())
}

pub fn encode_hard_state(state: &HardStateRecord) -> [u8; HARD_STATE_BYTES] {
    encode_record(HARD_STATE_MAGIC, [state.term, state.vote, state.commit])
}

/// Decodes a hard state record. Its file is replaced atomically, so any defect is corruption:
/// the error says which.
pub fn decode_hard_state(bytes: &[u8]) -> Result<HardStateRecord, String> {
    let [term, vote, commit] = decode_record(bytes, HARD_STATE_MAGIC)?;
    Ok(HardStateRecord { term, vote, commit })
}

pub fn encode_compacted(compacted: &CompactedRecord) -> [u8; HARD_STATE_BYTES] {
    encode_record(COMPACTED_MAGIC, [compacted.index, compacted.term, 0])
}

/// Decodes the record of where the log was compacted; like the hard state's, its file is
/// replaced atomically, so any defect is corruption.
pub fn decode_compacted(bytes: &[u8]) -> Result<CompactedRecord, String> {
    let [index, term, _] = decode_record(bytes, COMPACTED_MAGIC)?;
    Ok(CompactedRecord { index, term })
}

/// What a restore records before it changes the journal (`journal_log::RESTORE_FILE`): the
/// first entry it writes and where that entry's records start, whether the member's records
/// before that go (a gap: the shard restarts there, or is trimmed), and the first fence entry
/// the snapshot covers (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoreRecord {
    pub index: u64,
    pub term: u64,
    pub start: u64,
    pub gap: bool,
    pub fence: u64,
}

/// Bytes of a restore record: magic, version, index, term, start, fence, flags, checksum.
pub const RESTORE_RECORD_BYTES: usize = 4 + 4 + 5 * 8 + 8;

pub fn encode_restore(restore: &RestoreRecord) -> [u8; RESTORE_RECORD_BYTES] {
    encode_record(RESTORE_MAGIC, [restore.index, restore.term, restore.start, restore.fence, u64::from(restore.gap)])
}

/// Decodes a restore record; replaced atomically like the others, so any defect is corruption.
pub fn decode_restore(bytes: &[u8]) -> Result<RestoreRecord, String> {
    let [index, term, start, fence, flags] = decode_record(bytes, RESTORE_MAGIC)?;
    if flags > 1 {
        return Err(format!("flags {flags:#x}"));
    }
    Ok(RestoreRecord { index, term, start, gap: flags == 1, fence })
}

/// The membership record's magic (`raft.conf`).
#[cfg(feature = "wire")]
pub const CONF_MAGIC: [u8; 4] = *b"SLCF";
/// Bytes of a membership record at most (its ConfState lists at most a few hundred ids).
#[cfg(feature = "wire")]
pub const CONF_RECORD_BYTES_MAX: usize = 64 << 10;

/// The group's membership as of entry (or snapshot) `index`: magic `SLCF`, version 1, `index
/// u64`, `length u32`, raft-rs' `ConfState` in its own protobuf encoding, then an xxh3 of all
/// before it. Replaced atomically, like the hard state.
#[cfg(feature = "wire")]
pub fn encode_conf(index: u64, conf_state: &raft::eraftpb::ConfState) -> Vec<u8> {
    use protobuf::Message as _;
    let state = conf_state.write_to_bytes().expect("a ConfState encodes");
    let mut out = Vec::with_capacity(28 + state.len());
    out.extend_from_slice(&CONF_MAGIC);
    out.extend_from_slice(&HARD_STATE_VERSION.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&(state.len() as u32).to_le_bytes());
    out.extend_from_slice(&state);
    let checksum = xxh3_64_with_seed(&out, FRAME_SEED);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Decodes a membership record; any defect is corruption (the file is replaced atomically).
#[cfg(feature = "wire")]
pub fn decode_conf(bytes: &[u8]) -> Result<(u64, raft::eraftpb::ConfState), String> {
    use protobuf::Message as _;
    if bytes.len() < 28 || bytes.len() > CONF_RECORD_BYTES_MAX {
        return Err(format!("{} bytes", bytes.len()));
    }
    check_magic_and_version(bytes, CONF_MAGIC)?;
    let length = u32_at(bytes, 16) as usize;
    if bytes.len() != 20 + length + 8 {
        return Err(format!("a state of {length} bytes in a record of {}", bytes.len()));
    }
    let end = 20 + length;
    if xxh3_64_with_seed(&bytes[..end], FRAME_SEED) != u64_at(bytes, end) {
        return Err("checksum mismatch".to_owned());
    }
    let conf_state =
        raft::eraftpb::ConfState::parse_from_bytes(&bytes[20..end]).map_err(|error| format!("the state: {error}"))?;
    Ok((u64_at(bytes, 8), conf_state))
}

/// The layout the small records share: magic, version, `N` words, checksum (`B` bytes in all,
/// `16 + 8 * N`).
fn encode_record<const N: usize, const B: usize>(magic: [u8; 4], words: [u64; N]) -> [u8; B] {
    const { assert!(B == 16 + 8 * N) };
    let mut out = [0u8; B];
    out[0..4].copy_from_slice(&magic);
    out[4..8].copy_from_slice(&HARD_STATE_VERSION.to_le_bytes());
    for (at, word) in words.iter().enumerate() {
        out[8 + 8 * at..16 + 8 * at].copy_from_slice(&word.to_le_bytes());
    }
    let checksum = xxh3_64_with_seed(&out[..B - 8], FRAME_SEED);
    out[B - 8..].copy_from_slice(&checksum.to_le_bytes());
    out
}

/// The start every small record shares (at least 8 bytes long, checked by the caller).
fn check_magic_and_version(bytes: &[u8], magic: [u8; 4]) -> Result<(), String> {
    if bytes[0..4] != magic {
        return Err("bad magic".to_owned());
    }
    let version = u32_at(bytes, 4);
    if version != HARD_STATE_VERSION {
        return Err(format!("version {version}, expected {HARD_STATE_VERSION}"));
    }
    Ok(())
}

fn decode_record<const N: usize>(bytes: &[u8], magic: [u8; 4]) -> Result<[u64; N], String> {
    let expected = 16 + 8 * N;
    if bytes.len() != expected {
        return Err(format!("{} bytes, expected {expected}", bytes.len()));
    }
    check_magic_and_version(bytes, magic)?;
    if xxh3_64_with_seed(&bytes[..expected - 8], FRAME_SEED) != u64_at(bytes, expected - 8) {
        return Err("checksum mismatch".to_owned());
    }
    Ok(std::array::from_fn(|at| u64_at(bytes, 8 + 8 * at)))
}
