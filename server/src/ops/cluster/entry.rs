//! What a shard's Raft entry carries: one batch of the shard's records, as its leader admitted
//! them, with the arrival time the leader's clock gave them; or the shard's seal. Every
//! replica appends the committed entries to its own journal in log order, so record indexes
//! (and with the catalog's shard prefix, sequence numbers) and arrival times are the same
//! everywhere.
//!
//! Layout (little endian), told apart by the first byte:
//!
//! ```text
//! records: version u8 = 1 | arrival_ms i64 | record_count u32
//!          per record: flags u8 (bit 0: sealed) | key_len u16 | data_len u32 | key | data
//! seal:    kind u8 = 2
//! ```
//!
//! The seal ends a reshard's parent (`ops/reshard.rs`): the records of the entries before it
//! are the parent's, on every replica, and every records entry committed after it is refused
//! (a closed shard's refusal: the proposer routes its records again, to the children). A
//! parent's end is therefore a position in its own log, not whatever each node had applied
//! when it heard of the reshard.
//!
//! The bytes come from the committed log, which peers wrote: the decoder checks every length
//! against what is left and returns an error, never panics (fuzz target `replicated_entry`,
//! which compiles this file in: it depends on `bytes` and `thiserror` only).

use bytes::{BufMut, Bytes, BytesMut};

/// One record of an entry (its shard is the group's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub partition_key: Bytes,
    pub data: Bytes,
    /// Sealed (encrypted) data: the journal's `AppendRecord::sealed`.
    pub sealed: bool,
}

pub const RECORDS_ENTRY_VERSION: u8 = 1;
/// version, arrival_ms, record_count.
pub const RECORDS_HEADER_BYTES: usize = 1 + 8 + 4;
/// flags, key_len, data_len.
pub const RECORD_HEADER_BYTES: usize = 1 + 2 + 4;
const FLAG_SEALED: u8 = 1;
/// The first (and only) byte of a seal entry; distinct from every records entry's version.
pub const SEAL_ENTRY_KIND: u8 = 2;
const _: () = assert!(SEAL_ENTRY_KIND != RECORDS_ENTRY_VERSION);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("a records entry of version {0} (this node reads 1)")]
    Version(u8),
    #[error("a records entry cut short at byte {at}")]
    Truncated { at: usize },
    #[error("a records entry with {0} bytes after its last record")]
    Trailing(usize),
    #[error("a record with unknown flags {0:#x}")]
    Flags(u8),
    #[error("a records entry with no records")]
    Empty,
    #[error("a seal entry of {0} bytes (it has 1)")]
    Seal(usize),
}

/// A shard's committed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEntry {
    Records(RecordsEntry),
    /// The shard ends here (a reshard's parent): no records after it.
    Seal,
}

/// The bytes of a seal entry.
pub fn encode_seal() -> Bytes {
    Bytes::from_static(&[SEAL_ENTRY_KIND])
}

/// Decodes a shard's entry: a seal, or records ([`decode`]).
pub fn decode_shard_entry(bytes: &Bytes) -> Result<ShardEntry, EntryError> {
    match bytes.first() {
        Some(&SEAL_ENTRY_KIND) if bytes.len() == 1 => Ok(ShardEntry::Seal),
        Some(&SEAL_ENTRY_KIND) => Err(EntryError::Seal(bytes.len())),
        _ => decode(bytes).map(ShardEntry::Records),
    }
}

/// One shard's records and their arrival time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsEntry {
    pub arrival_ms: i64,
    pub records: Vec<EntryRecord>,
}

/// The encoded size of `records` in an entry.
pub fn encoded_bytes(records: &[EntryRecord]) -> usize {
    RECORDS_HEADER_BYTES
        + records.iter().map(|r| RECORD_HEADER_BYTES + r.partition_key.len() + r.data.len()).sum::<usize>()
}

/// Encodes the records of one shard (keys up to 256 bytes, as the model checked).
pub fn encode(arrival_ms: i64, records: &[EntryRecord]) -> Bytes {
    let mut out = BytesMut::with_capacity(encoded_bytes(records));
    out.put_u8(RECORDS_ENTRY_VERSION);
    out.put_i64_le(arrival_ms);
    out.put_u32_le(records.len() as u32);
    for record in records {
        out.put_u8(if record.sealed { FLAG_SEALED } else { 0 });
        out.put_u16_le(u16::try_from(record.partition_key.len()).expect("partition keys are at most 256 bytes"));
        out.put_u32_le(u32::try_from(record.data.len()).expect("a record is at most a few MiB"));
        out.put_slice(&record.partition_key);
        out.put_slice(&record.data);
    }
    out.freeze()
}

/// Decodes an entry; the records share `bytes`' allocation.
pub fn decode(bytes: &Bytes) -> Result<RecordsEntry, EntryError> {
    let take = |at: &mut usize, length: usize| -> Result<Bytes, EntryError> {
        let end = at.checked_add(length).filter(|end| *end <= bytes.len()).ok_or(EntryError::Truncated { at: *at })?;
        let taken = bytes.slice(*at..end);
        *at = end;
        Ok(taken)
    };
    let mut at = 0;
    let header = take(&mut at, RECORDS_HEADER_BYTES)?;
    if header[0] != RECORDS_ENTRY_VERSION {
        return Err(EntryError::Version(header[0]));
    }
    let arrival_ms = i64::from_le_bytes(header[1..9].try_into().expect("eight bytes"));
    let count = u32::from_le_bytes(header[9..13].try_into().expect("four bytes")) as usize;
    if count == 0 {
        return Err(EntryError::Empty);
    }
    // Each record takes at least its header: a count the bytes cannot hold is refused before
    // anything is allocated for it.
    if count > (bytes.len() - at) / RECORD_HEADER_BYTES {
        return Err(EntryError::Truncated { at });
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let header = take(&mut at, RECORD_HEADER_BYTES)?;
        let flags = header[0];
        if flags & !FLAG_SEALED != 0 {
            return Err(EntryError::Flags(flags));
        }
        let key_bytes = u16::from_le_bytes(header[1..3].try_into().expect("two bytes")) as usize;
        let data_bytes = u32::from_le_bytes(header[3..7].try_into().expect("four bytes")) as usize;
        let partition_key = take(&mut at, key_bytes)?;
        let data = take(&mut at, data_bytes)?;
        records.push(EntryRecord { partition_key, data, sealed: flags & FLAG_SEALED != 0 });
    }
    if at != bytes.len() {
        return Err(EntryError::Trailing(bytes.len() - at));
    }
    Ok(RecordsEntry { arrival_ms, records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(key: &[u8], data: &[u8], sealed: bool) -> EntryRecord {
        EntryRecord { partition_key: Bytes::copy_from_slice(key), data: Bytes::copy_from_slice(data), sealed }
    }

    #[test]
    fn an_entry_round_trips_and_every_cut_is_refused() {
        let records = vec![record(b"k", b"", false), record(b"key-2", b"data", true)];
        let bytes = encode(1_700_000_000_123, &records);
        assert_eq!(bytes.len(), encoded_bytes(&records));
        assert_eq!(decode(&bytes), Ok(RecordsEntry { arrival_ms: 1_700_000_000_123, records }));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode(&Bytes::from(longer)), Err(EntryError::Trailing(1)));
        assert_eq!(decode(&encode(1, &[])), Err(EntryError::Empty));
    }

    #[test]
    fn a_seal_is_told_apart_from_records() {
        assert_eq!(decode_shard_entry(&encode_seal()), Ok(ShardEntry::Seal));
        assert_eq!(decode_shard_entry(&Bytes::from_static(&[SEAL_ENTRY_KIND, 0])), Err(EntryError::Seal(2)));
        let records = vec![record(b"k", b"d", false)];
        let bytes = encode(5, &records);
        assert_eq!(decode_shard_entry(&bytes), Ok(ShardEntry::Records(RecordsEntry { arrival_ms: 5, records })));
        assert_eq!(decode(&encode_seal()), Err(EntryError::Truncated { at: 0 }));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let bytes = Bytes::from(bytes);
            let _ = decode(&bytes);
            let _ = decode_shard_entry(&bytes);
        }

        #[test]
        fn any_records_round_trip(
            arrival_ms in any::<i64>(),
            records in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..50), any::<bool>()),
                1..8,
            ),
        ) {
            let records: Vec<_> = records.iter().map(|(key, data, sealed)| record(key, data, *sealed)).collect();
            prop_assert_eq!(decode(&encode(arrival_ms, &records)), Ok(RecordsEntry { arrival_ms, records }));
        }
    }
}
